"""-v/-q/--color and progress, end to end against the simulator: stderr tells what the run
is doing, stdout stays the plan (valid JSON stays valid JSON), no secret is logged."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS, Credentials
from tests.e2e_support import EXAMPLE, SMS_SECRET, base_env, run

pytestmark = pytest.mark.e2e


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def in_process(
    *argv: str, env: dict[str, str], stdout: io.StringIO | None = None
) -> tuple[int, str, str]:
    out, err = stdout or io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env=env, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_a_long_rate_limit_is_announced_and_json_stays_clean(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"rate_limit_next": 1, "retry_after": 5}))
    result = run("plan", "-c", str(EXAMPLE), "--output", "json", env=base_env(sim.base_url))
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["summary"] == {"create": 10, "update": 0, "delete": 0}
    assert "rate limited by ThingSpace; retrying in 5 s\n" in result.stderr
    # The wait made reading take more than 5 s: a CI log gets a progress line and the end.
    assert "Reading listings: 0/5 (" in result.stderr
    assert result.stderr.endswith("Reading listings: 5/5 done in " + _tail(result.stderr))


def _tail(text: str) -> str:
    return text.rsplit(" done in ", 1)[1]


def test_quiet_says_nothing_but_the_summary(sim: Simulator) -> None:
    env = base_env(sim.base_url)
    sim.set_faults(FaultSettings.from_dict({"rate_limit_next": 1, "retry_after": 5}))
    applied = run("apply", "-c", str(EXAMPLE), "--auto-approve", "-q", env=env)
    assert applied.code == 0, applied.output
    assert applied.stderr == ""  # not even the 5 s wait
    assert applied.stdout == "Apply complete! Changes made: 10 created, 0 updated, 0 deleted.\n"
    again = run("apply", "-c", str(EXAMPLE), "--auto-approve", "--quiet", env=env)
    assert (again.code, again.stdout, again.stderr) == (0, "No changes.\n", "")


def test_quiet_still_shows_the_plan_it_asks_about(sim: Simulator) -> None:
    out, err = Tty(), io.StringIO()
    code = cli.main(
        ["apply", "-c", str(EXAMPLE), "-q"],
        env=base_env(sim.base_url), stdin=Tty("yes\n"), stdout=out, stderr=err,
    )  # fmt: skip
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "Plan: 10 to create, 0 to update, 0 to delete." in text  # what "yes" approves
    assert ": created" not in text  # but no line per change
    assert text.endswith("Apply complete! Changes made: 10 created, 0 updated, 0 deleted.\n")


def test_verbose_logs_logins_renewals_and_a_request_summary(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"latency_ms": 100}))
    env = base_env(sim.base_url)
    expired = threading.Event()

    def expire_after_first_write() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(r.method == "POST" and "/callbacks/" in r.path
                                                      for r in sim.requests()):  # fmt: skip
            time.sleep(0.02)
        sim.expire_sessions()
        expired.set()

    watcher = threading.Thread(target=expire_after_first_write)
    watcher.start()
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", "--parallelism", "1", "-v", env=env)
    watcher.join()
    assert expired.is_set() and result.code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "logged in (M2M session)"
    assert "session renewed: login 2" in lines
    assert any(line.startswith("Reading listings: 5/5 done in ") for line in lines)
    assert any(line.startswith("Applying changes: 10/10 done in ") for line in lines)
    summary = lines[-1]
    assert summary.startswith("Requests: ") and "; 2 logins (1 renewal)" in summary
    # the plan's 5 listings, then apply's re-reads of each account around its writes
    gets = re.search(r"GET (\d+)", summary)
    assert gets is not None and int(gets.group(1)) > 5 and "DELETE" not in summary
    # stdout is the plan and the results, nothing of the log
    assert "Requests:" not in result.stdout and "logged in" not in result.stdout


def test_very_verbose_logs_every_request_and_never_a_secret(sim: Simulator) -> None:
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", "-vv", env=base_env(sim.base_url))
    assert result.code == 0, result.output
    assert "POST /api/m2m/v1/session/login: HTTP 200 in " in result.stderr
    assert result.stderr.count("POST /api/m2m/v1/callbacks/") == 8
    for name in ("THINGSPACE_CLIENT_SECRET", "THINGSPACE_PASSWORD"):
        assert SIMULATOR_DEFAULTS[name] not in result.output
    assert SMS_SECRET not in result.output


def test_verbose_and_quiet_together_is_bad_usage(sim: Simulator) -> None:
    result = run("plan", "-c", str(EXAMPLE), "-v", "-q", env=base_env(sim.base_url))
    assert result.code == 1
    assert "not allowed with argument" in result.stderr
    assert sim.requests() == []


def test_color_always_beats_no_color_and_never_beats_a_terminal(sim: Simulator) -> None:
    env = base_env(sim.base_url)  # NO_COLOR=1
    assert env["NO_COLOR"] == "1"
    plain = run("plan", "-c", str(EXAMPLE), env=env)
    assert "\x1b[" not in plain.output
    always = run("plan", "-c", str(EXAMPLE), "--color", "always", env=env)
    assert always.code == 0 and "\x1b[32m+ create" in always.stdout
    env.pop("NO_COLOR")
    code, out, _ = in_process("plan", "-c", str(EXAMPLE), env=env, stdout=Tty())
    assert code == 0 and "\x1b[32m+ create" in out  # auto, on a terminal
    code, out, _ = in_process("plan", "-c", str(EXAMPLE), "--color", "never", env=env, stdout=Tty())
    assert code == 0 and "\x1b[" not in out


def test_colour_never_reaches_json(sim: Simulator) -> None:
    result = run("plan", "-c", str(EXAMPLE), "--output", "json", "--color", "always",
                 env=base_env(sim.base_url))  # fmt: skip
    assert result.code == 0 and "\x1b" not in result.stdout
    json.loads(result.stdout)


def test_bad_color_value_is_one_line(sim: Simulator) -> None:
    result = run("plan", "-c", str(EXAMPLE), "--color", "sometimes", env=base_env(sim.base_url))
    assert result.code == 1 and result.stderr.count("\n") == 1
    assert "invalid choice: 'sometimes'" in result.stderr
