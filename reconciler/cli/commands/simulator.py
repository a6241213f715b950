"""``tscallbacks simulator serve``: the argument set and the command body.

Numbers are parsed here rather than by argparse, so a bad value is a one-line
:class:`UsageError` (exit 1 through the CLI's error funnel), not argparse's exit 2. What
the simulator itself refuses (a state file, a port) arrives as its own error and leaves
as a :class:`UsageError` too.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from reconciler.cli.console import Console
from reconciler.cli.simulated import simulator_credentials, usage_errors
from reconciler.core.errors import ExitStatus, UsageError
from reconciler.simulator.faults import FaultSettings
from reconciler.simulator.server import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import Credentials


def _int(value: Any, flag: str, low: int, high: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UsageError(f"{flag}: {value!r} is not an integer") from None
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise UsageError(f"{flag}: must be {bounds}, got {number}")
    return number


def _float(value: Any, flag: str, low: float, high: float | None = None) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise UsageError(f"{flag}: {value!r} is not a number") from None
    if not number >= low or (high is not None and number > high):  # `not >=` rejects NaN
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise UsageError(f"{flag}: must be {bounds}, got {value}")
    return number


def _fail_writes(values: list[str] | None) -> dict[str, int]:
    failing: dict[str, int] = {}
    for item in values or []:
        account, sep, status = item.rpartition("=")
        if not sep or not account:
            raise UsageError(f"--fail-writes: expected ACCOUNT=STATUS, got {item!r}")
        failing[account] = _int(status, "--fail-writes", 400, 599)
    return failing


def _accounts(values: list[str] | None) -> frozenset[str] | None:
    if not values:
        return None
    names = frozenset(n.strip() for v in values for n in v.split(",") if n.strip())
    if not names:
        raise UsageError("--accounts: give at least one account name")
    return names


def fault_settings(args: argparse.Namespace) -> FaultSettings:
    """The start-up fault settings named by the flags (a bad value is a UsageError)."""
    with usage_errors():  # FaultSettings re-checks what the flags already checked
        return FaultSettings(
            latency_ms=_int(args.latency_ms, "--latency-ms", 0),
            rate_limit_next=_int(args.rate_limit_next, "--rate-limit-next", 0),
            rate_limit_fraction=_float(args.rate_limit_fraction, "--rate-limit-fraction", 0.0, 1.0),
            retry_after=_int(args.retry_after, "--retry-after", 0),
            seed=None if args.seed is None else _int(args.seed, "--seed", -(2**63)),
            server_error_next=_int(args.server_error_next, "--server-error-next", 0),
            server_error_status=_int(args.server_error_status, "--server-error-status", 500, 599),
            fail_writes=_fail_writes(args.fail_writes),
            drop_next=_int(args.drop_next, "--drop-next", 0),
        )


def build_simulator(args: argparse.Namespace, *, env: Mapping[str, str]) -> Simulator:
    """A bound (not yet serving) simulator for the parsed ``serve`` arguments."""
    config = SimulatorConfig(
        credentials=simulator_credentials(Credentials.for_simulator(env)),
        accounts=_accounts(args.accounts),
        session_idle_seconds=_float(args.session_idle, "--session-idle", 0.001),
        token_ttl_seconds=_float(args.token_ttl, "--token-ttl", 1.0),
        faults=fault_settings(args),
    )
    port = _int(args.port, "--port", 0, 65535)
    state = Path(args.state) if args.state else None
    with usage_errors():
        return Simulator(config, state_path=state, host=args.host, port=port)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop``; only the main thread may install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_serve(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str],
    stdout: TextIO,
    stop: threading.Event | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (or until ``stop`` is set); returns exit status 0.

    Prints one line, ``ThingSpace simulator listening on URL (state: FILE|memory)``,
    once the socket is bound, so a caller may read it to learn the port.
    """
    simulator = build_simulator(args, env=env)
    stop = stop or threading.Event()
    try:
        with _stop_on_signals(stop):
            simulator.start()
            where = str(simulator.state_path) if simulator.state_path else "memory"
            stdout.write(
                f"ThingSpace simulator listening on {simulator.base_url} (state: {where})\n"
            )
            stdout.flush()
            while not stop.wait(0.5):  # a timed wait keeps signal handlers responsive
                pass
    finally:
        simulator.stop()
    return 0


def run(args: argparse.Namespace, io: Console) -> ExitStatus:
    """``tscallbacks simulator serve``."""
    return ExitStatus(run_serve(args, env=io.env, stdout=io.stdout))
