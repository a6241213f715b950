"""Ctrl-C and SIGTERM stop promptly, in every phase, with a message true to that phase."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.auth import LOGIN_PATH
from reconciler.thingspace.credentials import Credentials
from tests.e2e_support import COMMAND, EXAMPLE, REPO, base_env

pytestmark = pytest.mark.e2e

LATENCY_MS = 1500  # every API request takes this long


@pytest.fixture
def slow_sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        simulator.set_faults(FaultSettings.from_dict({"latency_ms": LATENCY_MS}))
        yield simulator


def _signal_while_reading(sim: Simulator, sig: int, *command: str) -> tuple[int, str, float]:
    """Start the real command; once it has logged in and its listings are on the wire,
    send ``sig``. Returns (exit code, stderr, seconds from the signal to the exit)."""
    proc = subprocess.Popen(
        [str(COMMAND), *command, "-c", str(EXAMPLE), "--parallelism", "2"],
        env=base_env(sim.base_url), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(r.path == LOGIN_PATH for r in sim.requests()):
            time.sleep(0.02)
        time.sleep(0.3)  # the first listings are waiting for their answers
        proc.send_signal(sig)
        signalled = time.monotonic()
        _, err = proc.communicate(timeout=30)
        return proc.returncode, err, time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_while_reading_stops_at_once(slow_sim: Simulator, sig: int) -> None:
    code, err, took = _signal_while_reading(slow_sim, sig, "plan")
    assert code == 1
    assert err == "Error: interrupted while reading; nothing was changed\n"
    # The listings on the wire had more than a second to go; it did not wait for them.
    assert took < 1.0
    writes = [r for r in slow_sim.requests() if "/callbacks/" in r.path and r.method != "GET"]
    assert writes == []


def test_interrupt_while_apply_reads_says_nothing_was_changed(slow_sim: Simulator) -> None:
    code, err, took = _signal_while_reading(slow_sim, signal.SIGINT, "apply", "--auto-approve")
    assert code == 1 and took < 1.0
    assert err == "Error: interrupted while reading; nothing was changed\n"
    assert "listed above" not in err


class _CtrlCAtPrompt(io.StringIO):
    """A terminal where the user presses Ctrl-C at the prompt."""

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_interrupt_at_the_prompt_cancels_the_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"SMS_HOOK_PASSWORD": "x-secret"}
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["apply", "--simulator", "-c", str(EXAMPLE)],
        env=env, stdin=_CtrlCAtPrompt(), stdout=out, stderr=err,
    )  # fmt: skip
    assert code == 1
    assert "Enter a value:" in out.getvalue()
    assert err.getvalue() == "Error: apply cancelled; nothing was changed\n"
    plan = cli.main(
        ["plan", "--simulator", "--detailed-exitcode", "-c", str(EXAMPLE)],
        env=env, stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    assert plan == 2  # nothing was applied


_SIGTERM_WHILE_PARSING = """
import importlib, os, signal, sys
funnel = importlib.import_module("reconciler.cli.main")
real = funnel.build_parser
def build_parser(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # a cancelled CI job, while starting up
    return real(*args, **kwargs)
funnel.build_parser = build_parser
sys.exit(funnel.main(["validate", "-c", sys.argv[1]]))
"""


def test_sigterm_while_starting_up_gets_the_one_line_message() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SIGTERM_WHILE_PARSING, str(EXAMPLE)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 1  # not -15 (143 in a shell), silently
    assert result.stderr == "Error: interrupted; nothing was changed\n"
