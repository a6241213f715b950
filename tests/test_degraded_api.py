"""Failing fast on a degraded API, through the real CLI: a black hole, a 503 token
endpoint, the deadline, sessions that keep expiring, a 401 that persists."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.credentials import Credentials
from tests.e2e_support import EXAMPLE, base_env, run
from tests.helpers import BlackHole

A1, A2 = "0252012345-00001", "0252012345-00002"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


def accounts_config(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "accounts.yaml"
    body = "version: 1\naccounts:\n"
    for i in range(count):
        body += f'  "A-{i:03}":\n    callbacks:\n'
        body += '      DeviceUsage: {url: "https://hooks.example.com/u"}\n'
    path.write_text(body)
    return path


def main(*argv: str, env: dict[str, str]) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = cli.main(list(argv), env=env, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue(), time.monotonic() - started


def count(sim: Simulator, path: str) -> int:
    return sum(1 for r in sim.requests() if r.path == path)


def writes(sim: Simulator, account: str | None = None) -> int:
    return sum(
        1
        for r in sim.requests()
        if r.method in ("POST", "DELETE")
        and "/callbacks/" in r.path
        and (account is None or r.path.split("/callbacks/")[1].startswith(account))
    )


# -- a black hole and a 503 token endpoint, at any parallelism --------------------------


@pytest.mark.parametrize("parallelism", [1, 4, 16])
def test_black_hole_fails_fast_with_requests_independent_of_parallelism(
    tmp_path: Path, parallelism: int
) -> None:
    config = accounts_config(tmp_path, 10)
    with BlackHole() as hole:
        code, out, err, elapsed = main(
            "plan", "-c", str(config), "--parallelism", str(parallelism), "--timeout", "0.2",
            env=base_env(hole.base),
        )  # fmt: skip
        connections = hole.connections
    assert code == 1 and out == ""
    assert connections == 3  # one token request sequence, cut by the breaker
    # three 0.2 s waits and two backoff waits of at most 0.5 s and 1 s
    assert elapsed < 3.5
    assert err == (
        "Error: stopped: 3 requests in a row failed (last: POST /api/ts/v1/oauth2/token: "
        f"no answer from 127.0.0.1:{hole.port} within 0.2 s); 3 requests sent in this run\n"
    )


@pytest.mark.parametrize("parallelism", [1, 4, 16])
def test_503_token_endpoint_costs_the_same_few_requests_at_any_parallelism(
    sim: Simulator, tmp_path: Path, parallelism: int
) -> None:
    sim.set_faults(FaultSettings.from_dict({"server_error_next": 1000, "server_error_status": 503}))
    config = accounts_config(tmp_path, 10)
    code, _, err, elapsed = main(
        "plan", "-c", str(config), "--parallelism", str(parallelism), env=base_env(sim.base_url)
    )
    assert code == 1
    assert count(sim, TOKEN_PATH) == 3 and len(sim.requests()) == 3
    assert elapsed < 5
    assert err.startswith("Error: stopped: 3 requests in a row failed (last: POST ")
    assert "HTTP 503" in err and err.count("\n") == 1


# -- the deadline ---------------------------------------------------------------------------


def test_the_deadline_stops_a_slow_run(sim: Simulator, tmp_path: Path) -> None:
    sim.set_faults(FaultSettings.from_dict({"latency_ms": 200}))
    config = accounts_config(tmp_path, 20)
    code, _, err, elapsed = main(
        "plan", "-c", str(config), "--parallelism", "1", "--deadline", "1",
        env=base_env(sim.base_url),
    )  # fmt: skip
    assert code == 1
    assert "stopped: the run's deadline of 1 s passed" in err and err.count("\n") == 1
    assert elapsed < 2.5  # not the 20 x 2 x 0.2 s the reading would take
    assert len(sim.requests()) < 10


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--timeout", "0"), ("--timeout", "soon"), ("--deadline", "-1"), ("--deadline", "nan")],
)
def test_timeout_and_deadline_must_be_positive_seconds(flag: str, value: str) -> None:
    code, _, err, _ = main("plan", flag, value, env={})
    assert code == 1 and err.startswith("Error: ") and err.count("\n") == 1
    assert f"argument {flag}: " in err
    assert "must be more than 0" in err or "expected seconds" in err


# -- sessions that expire, and a 401 that persists -------------------------------------


def _expire_after_writes(sim: Simulator, marks: tuple[int, ...]) -> threading.Thread:
    def watch() -> None:
        for mark in marks:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and writes(sim) < mark:
                time.sleep(0.01)
            sim.expire_sessions()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_sessions_expiring_twice_within_a_minute_are_renewed_each_time(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"latency_ms": 60}))
    watcher = _expire_after_writes(sim, (2, 5))
    result = run(
        "apply", "-c", str(EXAMPLE), "--auto-approve", "--parallelism", "1",
        env=base_env(sim.base_url),
    )  # fmt: skip
    watcher.join(timeout=30)
    assert result.code == 0, result.output
    assert "Changes made: 10 created" in result.stdout
    assert count(sim, LOGIN_PATH) == 3  # one login, two renewals
    assert sum(1 for r in sim.requests() if r.status == 401) == 2


def test_a_third_expiry_stops_the_run_at_the_renewal_cap(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"latency_ms": 60}))
    watcher = _expire_after_writes(sim, (2, 4, 6))
    result = run(
        "apply", "-c", str(EXAMPLE), "--auto-approve", "--parallelism", "1",
        env=base_env(sim.base_url),
    )  # fmt: skip
    watcher.join(timeout=30)
    assert result.code == 1
    assert "renewed at most 2 times per run" in result.stderr
    assert count(sim, LOGIN_PATH) == 3
    # Three requests answered 401 by an expired session (writes or re-reads, as the
    # order of the work has it); nothing but the logout was sent after the third.
    records = sim.requests()
    refused = [n for n, r in enumerate(records) if r.status == 401 and "/callbacks/" in r.path]
    assert len(refused) == 3
    assert all(r.path.endswith("/logout") for r in records[refused[-1] + 1 :])
    made = sum(
        1 for r in records if r.method == "POST" and "/callbacks/" in r.path and r.status == 200
    )
    assert 0 < made < 10
    assert f"Changes made: {made} created" in result.stdout
    assert "not attempted" in result.stderr


def test_a_401_that_persists_after_renewal_stops_the_apply(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"fail_writes": {A1: 401}}))
    result = run(
        "apply", "-c", str(EXAMPLE), "--auto-approve", "--parallelism", "1",
        env=base_env(sim.base_url),
    )  # fmt: skip
    assert result.code == 1
    assert writes(sim, A1) == 2  # the first change, and once more after a new login
    assert writes(sim) == 2  # nothing else was sent, in any account
    assert "refused again right after a new login" in result.stderr
    assert result.stderr.count("not attempted") == 9
    assert count(sim, LOGIN_PATH) == 2


# -- the one slow test: the default settings against a black hole ---------------------------


@pytest.mark.slow
def test_plan_against_a_black_hole_ends_within_30_s_with_the_defaults(tmp_path: Path) -> None:
    config = accounts_config(tmp_path, 10)
    with BlackHole() as hole:
        started = time.monotonic()
        result = run("plan", "-c", str(config), env=base_env(hole.base), timeout=60)
        elapsed = time.monotonic() - started
        connections = hole.connections
    assert result.code == 1
    assert elapsed <= 30
    assert connections == 3
    assert f"no answer from 127.0.0.1:{hole.port} within 8 s" in result.stderr
    # One error line; the rest is the progress a CI log gets every 5 s of a long phase.
    errors = [line for line in result.stderr.splitlines() if not line.startswith("Reading ")]
    assert len(errors) == 1 and errors[0].startswith("Error: stopped: 3 requests in a row")
    assert "Reading listings: 0/20 (5.0 s)\n" in result.stderr  # 10 accounts, 2 families
    assert "Reading listings: 0/20 stopped after " in result.stderr


class _SlowReader(io.StringIO):
    """A terminal where someone reads the plan for a while, then types yes."""

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        time.sleep(1.5)
        return "yes\n"


def test_time_at_the_prompt_does_not_count_towards_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["apply", "--simulator", "-c", str(EXAMPLE), "--deadline", "1"],
        env={"SMS_HOOK_PASSWORD": "x-secret"}, stdin=_SlowReader(), stdout=out, stderr=err,
    )  # fmt: skip
    assert code == 0, err.getvalue()
    assert "Apply complete! Changes made: 10 created" in out.getvalue()
