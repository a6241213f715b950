"""The in-process simulator behind ``--simulator``: no setup, state in a local file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from reconciler.core.errors import UsageError
from reconciler.simulator.server import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import Credentials

DEFAULT_STATE_PATH = Path(".tscallbacks/simulator.json")


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
    with Simulator(SimulatorConfig(credentials=credentials), state_path=state_path) as simulator:
        yield simulator.base_url, credentials
