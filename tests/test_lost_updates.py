"""Lost updates: an account someone else changed after the plan gets no write, and what
someone else already did for us is not a failure.

The CLI runs in-process against the simulator over real HTTP. "Someone else" is a raw API
client (as another tool or a second ``tscallbacks`` would be) that changes an account
while this run waits at its confirmation prompt: after the plan, before the first write.
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import cli
from reconciler.cli.commands import apply as apply_command
from reconciler.core.errors import ApiError
from reconciler.core.families import FOTA, M2M
from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from tests.e2e_support import COMMAND, EXAMPLE, DirectApi, base_env

pytestmark = pytest.mark.e2e

A1, A2, SANDBOX = "0252012345-00001", "0252012345-00002", "TestAccount-2"
CHANGED = f"Error: {A1}: changed by someone else since the plan; nothing was changed for it"


class PromptHook(io.StringIO):
    """A terminal whose user answers ``yes``, after ``meanwhile`` has run (the other writer)."""

    def __init__(self, meanwhile: Callable[[], None]) -> None:
        super().__init__("yes\n")
        self.meanwhile = meanwhile
        self.asked = 0

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1, /) -> str:  # type: ignore[override]
        self.asked += 1
        self.meanwhile()
        return super().readline(-1 if size is None else size)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


def tscallbacks(sim: Simulator, *argv: str, stdin: io.StringIO) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env=base_env(sim.base_url), stdin=stdin, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def writes_to(sim: Simulator, account: str) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in sim.requests()
        if r.method in ("POST", "PUT", "DELETE")
        and "/callbacks/" in r.path
        and r.account == account
    ]


def converge(sim: Simulator) -> None:
    code, _, err = tscallbacks(
        sim, "apply", "-c", str(EXAMPLE), "--auto-approve", stdin=io.StringIO()
    )
    assert code == 0, err


def test_apply_leaves_an_account_changed_after_the_plan_alone(sim: Simulator) -> None:
    converge(sim)
    api = DirectApi(sim.base_url)
    api.register(A1, "DeviceUsage", "https://drift.example.net/usage")  # drift in both
    api.register(A2, "DeviceUsage", "https://drift.example.net/usage")
    sim.clear_requests()
    # At the prompt, another pipeline changes A1 to its own configuration.
    hook = PromptHook(lambda: api.register(A1, "QoS", "https://other-pipeline.example.net/qos"))

    code, out, err = tscallbacks(sim, "apply", "-c", str(EXAMPLE), stdin=hook)

    assert hook.asked == 1 and code == 1
    assert writes_to(sim, A1) == [("POST", f"/api/m2m/v1/callbacks/{A1}")]  # the other's only
    assert writes_to(sim, A2) == [("POST", f"/api/m2m/v1/callbacks/{A2}")]  # ours went ahead
    assert err.splitlines() == [CHANGED, "Error: apply failed: 1 account not changed as planned"]
    assert f"{A2}/DeviceUsage: updated" in out and "Apply failed!" in out
    a1 = {i["serviceName"]: i["url"] for i in api.list(A1)}
    assert a1["DeviceUsage"] == "https://drift.example.net/usage"  # not overwritten
    assert a1["QoS"] == "https://other-pipeline.example.net/qos"  # not lost


def test_a_saved_plan_that_was_fresh_is_still_checked_before_writing(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planfile = tmp_path / "plan.json"
    code, _, err = tscallbacks(
        sim, "plan", "-c", str(EXAMPLE), "--out", str(planfile), stdin=io.StringIO()
    )
    assert code == 0, err
    api = DirectApi(sim.base_url)
    sim.clear_requests()
    # The plan file passes its staleness check; then, before the first write, another
    # saved plan is applied to A1 (the last writer must not win silently). A saved plan
    # is its own approval (no prompt), so the other writer runs right after the check.
    passed: list[bool] = []
    real_check = apply_command.check_fresh

    def check_then_other_writer(*args: Any, **kwargs: Any) -> None:
        real_check(*args, **kwargs)
        passed.append(True)
        api.register(A1, "DeviceUsage", "https://other-plan.example.net/u")

    monkeypatch.setattr(apply_command, "check_fresh", check_then_other_writer)

    code, _, err = tscallbacks(sim, "apply", str(planfile), stdin=io.StringIO())

    assert passed == [True] and code == 1
    assert "stale" not in err
    assert writes_to(sim, A1) == [("POST", f"/api/m2m/v1/callbacks/{A1}")]  # the other's only
    assert len(writes_to(sim, A2)) == 3 and len(writes_to(sim, SANDBOX)) == 2  # ours went ahead
    assert CHANGED in err.splitlines()
    assert {i["url"] for i in api.list(A1)} == {"https://other-plan.example.net/u"}


def test_an_unchanged_account_is_applied_after_the_prompt(sim: Simulator) -> None:
    hook = PromptHook(lambda: None)
    code, out, err = tscallbacks(sim, "apply", "-c", str(EXAMPLE), stdin=hook)
    assert code == 0, err
    assert "Apply complete! Changes made: 10 created, 0 updated, 0 deleted." in out
    lists = [r for r in sim.requests() if r.method == "GET" and r.account == A1]
    assert len(lists) >= 4  # the plan's two listings, read again before writing


def test_removing_what_someone_else_removed_is_success(sim: Simulator) -> None:
    api = DirectApi(sim.base_url)
    api.register(A1, "DeviceUsage", "https://hooks.example.com/keep")
    sim.set_faults(FaultSettings.from_dict({"fail_writes": {A2: 400}}))
    with ThingSpaceClient(sim.base_url, Credentials.for_simulator({})) as client:
        client.deregister(A1, M2M, "QoS")  # the simulator: 400 "... is not registered ..."
        client.deregister(A1, FOTA, "Fota")
        with pytest.raises(ApiError, match="writes to this account fail"):
            client.deregister(A2, M2M, "QoS")  # a real refusal stays one
    calls = [(r.method, r.status) for r in sim.requests() if "/callbacks/" in r.path]
    assert calls[-5:] == [
        *[("DELETE", 400), ("GET", 200)] * 2,  # refused, then confirmed by a listing
        ("DELETE", 400),
    ]


# -- two real applies racing ----------------------------------------------------------------

TRIALS = 3
RACED = ("DeviceUsage", "Fota", "QoS", "StateService")
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+) ")


@pytest.fixture
def served() -> Iterator[str]:
    """``tscallbacks simulator serve`` with 100 ms of latency on every API call."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THINGSPACE_")}
    proc = subprocess.Popen(
        [str(COMMAND), "simulator", "serve", "--port", "0", "--latency-ms", "100"],
        env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        match = LISTENING.search(proc.stdout.readline())
        assert match, "the simulator did not announce itself"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def race_config(tag: str, accounts: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """A configuration registering every raced service at ``tag``'s URLs, and what each
    account holds when it is applied."""
    urls = {s: f"https://hooks.example.com/{tag}/{s.lower()}" for s in RACED}
    lines = ["version: 1", "accounts:"]
    for account in accounts:
        lines += [f'  "{account}":', "    callbacks:"]
        lines += [f"      {s}: {{url: {url}}}" for s, url in urls.items()]
    return "\n".join(lines) + "\n", urls


class Waiting:
    """``tscallbacks apply`` on a terminal, stopped at its prompt after planning."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.terminal, tty = pty.openpty()
        self.proc = subprocess.Popen(
            [str(COMMAND), "apply", "-c", str(config)],
            env=env, stdin=tty, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        os.close(tty)
        self.shown = b""

    def wait_for_prompt(self, timeout: float = 60) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"Enter a value:" not in self.shown:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else b""
            assert chunk, f"no prompt: {self.shown.decode()}"
            self.shown += chunk

    def approve(self) -> None:
        os.write(self.terminal, b"yes\n")

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=120)
        os.close(self.terminal)
        return self.proc.returncode, (self.shown + out).decode(), err.decode()


def test_two_applies_racing_never_both_succeed_nor_leave_a_mix(served: str, tmp_path: Path) -> None:
    api = DirectApi(served)
    env = base_env(served)
    for trial in range(TRIALS):
        accounts = (f"0252012345-{trial}0001", f"0252012345-{trial}0002")
        for account in accounts:  # both plans update one, create three, delete a stray one
            api.register(account, "DeviceUsage", "https://old.example.com/usage")
            api.register(account, "CarrierService", "https://old.example.com/carrier")
        wanted: dict[str, dict[str, str]] = {}
        runs: list[Waiting] = []
        for tag in ("merge-pipeline", "nightly-job"):
            text, wanted[tag] = race_config(tag, accounts)
            config = tmp_path / f"{trial}-{tag}.yaml"
            config.write_text(text)
            runs.append(Waiting(config, env))
        # Both have planned from the same state; both are approved at the same moment.
        for run in runs:
            run.wait_for_prompt()
        for run in runs:
            run.approve()
        outcomes = [run.finish() for run in runs]
        codes = [code for code, _, _ in outcomes]

        assert codes != [0, 0], f"trial {trial}: both runs reported success"
        for account in accounts:
            final = {i["serviceName"]: i["url"] for i in api.list(account)}
            final.update({i["name"]: i["url"] for i in api.list(account, "fota")})
            assert final in wanted.values(), f"trial {trial}: {account} is a mix: {final}"
        for (code, _, err), urls in zip(outcomes, wanted.values(), strict=True):
            assert "Traceback" not in err
            if code == 0:
                continue
            # A run that did not win says, for each account it lost, that someone else
            # changed it; it fails for no other reason.
            lost = [a for a in accounts if {i["url"] for i in api.list(a)} - set(urls.values())]
            assert lost, f"trial {trial}: a run failed without losing an account: {err}"
            lines = err.splitlines()
            assert lines[-1].startswith("Error: apply failed: ") and "changes failed" not in err
            for account in lost:
                assert any(
                    line.startswith(f"Error: {account}: changed by someone else") for line in lines
                ), err
