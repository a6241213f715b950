"""The in-process simulator behind ``--simulator``, and the glue between CLI and simulator.

The simulator shares no types with the product (it is the oracle the client is tested
against), so the CLI converts at this edge: product credentials become simulator
credentials, and a :class:`SimulatorError` becomes the CLI's one-line :class:`UsageError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from reconciler.core.errors import UsageError
from reconciler.simulator import SimulatorCredentials, SimulatorError
from reconciler.simulator.server import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import Credentials

DEFAULT_STATE_PATH = Path(".tscallbacks/simulator.json")


def simulator_credentials(credentials: Credentials) -> SimulatorCredentials:
    """The simulator's value for the credentials it must accept."""
    return SimulatorCredentials(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        username=credentials.username,
        password=credentials.password,
    )


@contextmanager
def usage_errors() -> Iterator[None]:
    """Re-raise a :class:`SimulatorError` (bad setting, state file, port) as a
    :class:`UsageError` with the same one-line message, for the CLI's error funnel."""
    try:
        yield
    except SimulatorError as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def embedded_simulator(
    *, env: Mapping[str, str], state_path: Path = DEFAULT_STATE_PATH
) -> Iterator[tuple[str, Credentials]]:
    """In-process simulator on a free 127.0.0.1 port with its state in ``state_path``.

    Missing directories are created. Yields ``(endpoint, credentials)``: the base URL and
    the credentials the client should use, ``Credentials.for_simulator(env)`` (each of the
    four contract variables from ``env`` if set, else the documented defaults), which are
    also exactly what the simulator accepts. Stops the server on exit.
    """
    credentials = Credentials.for_simulator(env)
    try:
        state_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create simulator state directory {state_path.parent}: {exc.strerror or exc}"
        ) from None
    config = SimulatorConfig(credentials=simulator_credentials(credentials))
    with usage_errors():  # only the start-up: errors of the caller's block pass unchanged
        simulator = Simulator(config, state_path=state_path)
    with simulator:
        yield simulator.base_url, credentials
