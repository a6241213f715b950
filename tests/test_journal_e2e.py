"""The journal end to end: the real ``tscallbacks apply`` against a real ``tscallbacks
simulator serve``, killed with SIGTERM mid-apply; the journal must match what the
simulator holds, its backup must equal the state before, and no secret may be in it."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS
from tests.e2e_support import COMMAND, EXAMPLE, SMS_SECRET, DirectApi, base_env, run

pytestmark = pytest.mark.e2e

A1, A2 = "0252012345-00001", "0252012345-00002"
OLD_SMS_SECRET = "the-password-before-the-bad-apply"
HOSTILE_USER = 'ops\n\u2028\x85"}{"record": "end"}\\'
LISTENING = re.compile(r"^ThingSpace simulator listening on (http://127\.0\.0\.1:\d+) ")

# The "bad" configuration: every account pruned, most registrations changed.
BAD = f"""\
version: 1
accounts:
  "{A1}":
    callbacks:
      DeviceUsage: {{url: "https://bad.example.com/usage"}}
      SMSDeliveryConfirmation:
        url: https://bad.example.com/sms
        username: someone-else
        password: ${{env:SMS_HOOK_PASSWORD}}
      AlertService: {{url: "https://bad.example.com/alerts"}}
  "{A2}":
    callbacks:
      QoS: {{url: "https://bad.example.com/qos"}}
      DeviceService: {{url: "https://bad.example.com/device"}}
"""
BAD_CHANGES = 7  # 2 updates and 1 create in A1, 2 deletes (CarrierService, Fota); A2: 1 + 1


class Served:
    """``tscallbacks simulator serve`` in its own process, as a pipeline would run it."""

    def __init__(self, state: Path, latency_ms: int) -> None:
        self.proc = subprocess.Popen(
            [str(COMMAND), "simulator", "serve", "--port", "0", "--state", str(state),
             "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE, text=True, env=base_env(),
        )  # fmt: skip
        assert self.proc.stdout is not None
        match = LISTENING.match(self.proc.stdout.readline())
        assert match, "the simulator did not start"
        self.base = match.group(1)

    def state(self) -> dict[str, Any]:
        return requests.get(f"{self.base}/_simulator/state", timeout=10).json()["accounts"]  # type: ignore[no-any-return]

    def write_calls(self) -> list[tuple[str, str]]:
        """(method, path) of every write to a callbacks path, in the simulator's log."""
        log = requests.get(f"{self.base}/_simulator/requests", timeout=10).json()
        entries = log["requests"] if isinstance(log, dict) else log
        written = ("POST", "PUT", "DELETE")
        return [(r["method"], r["path"]) for r in entries
                if r["method"] in written and "/callbacks" in r["path"]]  # fmt: skip

    def writes(self) -> int:
        return len(self.write_calls())

    def clear_requests(self) -> None:
        requests.delete(f"{self.base}/_simulator/requests", timeout=10)

    def set_latency(self, ms: int) -> None:
        requests.post(f"{self.base}/_simulator/faults", json={"latency_ms": ms}, timeout=10)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with Served(tmp_path / "sim.json", latency_ms=0) as server:
        yield server


def seed(base: str, *, username: str = "thingspace-ops") -> None:
    """What is there before the bad apply (passwords included)."""
    api = DirectApi(base)
    api.register(A1, "DeviceUsage", "https://good.example.com/usage")
    api.register(A1, "SMSDeliveryConfirmation", "https://good.example.com:9001/sms",
                 username=username, password=OLD_SMS_SECRET)  # fmt: skip
    api.register(A1, "CarrierService", "https://good.example.com/carrier")
    api.register(A1, "Fota", "https://good.example.com/fota")
    api.register(A2, "QoS", "https://good.example.com/qos")


def records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text("ascii")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def family(service: str) -> str:
    return "fota" if service == "Fota" else "m2m"


def as_backup(state: dict[str, Any], accounts: list[str]) -> dict[str, Any]:
    """The simulator's state as the journal's backup must record it: no password value."""
    return {
        account: {
            "families": ["m2m", "fota"],
            "callbacks": {
                service: {
                    "family": family(service),
                    "url": reg["url"],
                    "username": reg.get("username"),
                    "password": "set" if reg.get("password") else "unset",
                }
                for service, reg in sorted(state.get(account, {}).items())
            },
        }
        for account in accounts
    }


def replay(state: dict[str, Any], writes: list[dict[str, Any]]) -> dict[str, Any]:
    """``state`` with the journal's successful writes made (passwords aside)."""
    view = {a: {s: (r["url"], r.get("username")) for s, r in regs.items()}
            for a, regs in state.items()}  # fmt: skip
    for write in writes:
        if write["outcome"] != "ok":
            continue
        account = view.setdefault(write["account"], {})
        if write["action"] == "delete":
            del account[write["service"]]
        else:
            account[write["service"]] = (write["after"]["url"], write["after"]["username"])
    return {a: regs for a, regs in view.items() if regs}


def without_passwords(state: dict[str, Any]) -> dict[str, Any]:
    return {a: {s: (r["url"], r.get("username")) for s, r in regs.items()}
            for a, regs in state.items() if regs}  # fmt: skip


@pytest.fixture
def slow_served(tmp_path: Path) -> Iterator[Served]:
    with Served(tmp_path / "sim.json", latency_ms=300) as server:  # serve --latency-ms 300
        yield server


def test_sigterm_mid_apply_leaves_a_journal_that_matches_the_simulator(
    slow_served: Served, tmp_path: Path
) -> None:
    served = slow_served
    seed(served.base)
    served.clear_requests()
    before = served.state()
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    journal = tmp_path / "audit" / "journal.jsonl"
    proc = subprocess.Popen(
        [str(COMMAND), "apply", "-c", str(bad), "--auto-approve", "--parallelism", "1",
         "--journal", str(journal), "--endpoint", served.base],
        env=base_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and served.writes() < 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1 and "interrupted" in err and "Traceback" not in err
    served.set_latency(0)
    after = served.state()

    found = records(journal)
    kinds = [r["record"] for r in found]
    assert kinds[:3] == ["run", "backup", "plan"] and kinds[-1] == "end"
    writes = [r for r in found if r["record"] == "write"]
    assert 2 <= len(writes) < BAD_CHANGES  # it really stopped mid-apply
    assert all(w["outcome"] == "ok" for w in writes)
    assert len(writes) == served.writes()  # every write sent is in the journal
    # The journal is the truth: the state before, plus its writes, is what the simulator has.
    assert replay(before, writes) == without_passwords(after)
    assert found[1]["accounts"] == as_backup(before, [A1, A2])
    end = found[-1]
    assert end["outcome"] == "interrupted" and end["exit"] == 1
    assert end["summary"]["planned"] == BAD_CHANGES
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600

    text = journal.read_text("ascii")
    for secret in SECRETS:
        assert secret not in text

    # Put back what was there, from the interrupted run's backup.
    restore = tmp_path / "restore.yaml"
    exported = run("export", "--from-journal", end["run_id"], "--journal", str(journal),
                   "-o", str(restore), env=base_env())  # fmt: skip
    assert exported.code == 0, exported.output
    assert f"set {SMS_VARIABLE} before plan/apply" in exported.stderr
    env = base_env(served.base, **{SMS_VARIABLE: OLD_SMS_SECRET})
    put_back = run("apply", "-c", str(restore), "--auto-approve", env=env, cwd=tmp_path)
    assert put_back.code == 0, put_back.output
    assert served.state() == before  # passwords included
    assert run("plan", "-c", str(restore), "--detailed-exitcode", env=env).code == 0


SECRETS = (
    OLD_SMS_SECRET,
    SMS_SECRET,
    SIMULATOR_DEFAULTS["THINGSPACE_CLIENT_SECRET"],
    SIMULATOR_DEFAULTS["THINGSPACE_PASSWORD"],
)
SMS_VARIABLE = f"TSC_{A1.replace('-', '_')}_SMSDELIVERYCONFIRMATION_PASSWORD"


def test_a_bad_apply_is_undone_from_its_journal(served: Served, tmp_path: Path) -> None:
    seed(served.base)
    before = served.state()
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    env = base_env(served.base)
    applied = run("apply", "-c", str(bad), "--auto-approve", env=env, cwd=tmp_path)
    assert applied.code == 0, applied.output
    assert served.state() != before
    journal = tmp_path / ".tscallbacks" / "journal.jsonl"
    assert all(secret not in journal.read_text("ascii") for secret in SECRETS)

    exported = run("export", "--from-journal", "last", env=base_env(), cwd=tmp_path)
    assert exported.code == 0, exported.output
    restore = tmp_path / "restore.yaml"
    restore.write_text(exported.stdout)
    assert exported.stdout.startswith("# Rebuilt by tscallbacks from the backup of apply run ")
    env[SMS_VARIABLE] = OLD_SMS_SECRET
    plan = run("plan", "-c", str(restore), "--output", "json", env=env)
    assert {(c["action"], c["service"]) for c in json.loads(plan.stdout)["changes"]} == {
        ("update", "DeviceUsage"),
        ("update", "SMSDeliveryConfirmation"),
        ("delete", "AlertService"),
        ("create", "CarrierService"),
        ("create", "Fota"),
        ("update", "QoS"),
        ("delete", "DeviceService"),
    }
    assert run("apply", "-c", str(restore), "--auto-approve", env=env, cwd=tmp_path).code == 0
    assert served.state() == before
    # The restore was an apply too: its own journal entry, and 'last' now names it.
    runs = [r for r in records(journal) if r["record"] == "run"]
    assert len(runs) == 2 and runs[1]["config"] == str(restore)


def test_hostile_values_from_the_api_stay_on_their_line(served: Served, tmp_path: Path) -> None:
    seed(served.base, username=HOSTILE_USER)
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = run("apply", "-c", str(bad), "--auto-approve", "--journal", "j.jsonl",
                 env=base_env(served.base), cwd=tmp_path)  # fmt: skip
    assert result.code == 0, result.output
    raw = (tmp_path / "j.jsonl").read_bytes()
    found = records(tmp_path / "j.jsonl")
    assert raw.count(b"\n") == len(found) == 3 + BAD_CHANGES + 1
    backup = found[1]["accounts"][A1]["callbacks"]["SMSDeliveryConfirmation"]
    assert backup["username"] == HOSTILE_USER  # exactly, after the JSON round trip
    update = next(r for r in found if r["record"] == "write" and r["before"]
                  and r["before"]["username"] == HOSTILE_USER)  # fmt: skip
    assert update["after"]["username"] == "someone-else"


def test_apply_journals_in_the_current_directory_by_default(tmp_path: Path) -> None:
    env = base_env(
        GITHUB_SERVER_URL="https://github.example.com",
        GITHUB_REPOSITORY="acme/callbacks",
        GITHUB_RUN_ID="4242",
        USER="deployer",
    )
    result = run("apply", "--simulator", "--auto-approve", "-c", str(EXAMPLE), env=env,
                 cwd=tmp_path)  # fmt: skip
    assert result.code == 0, result.output
    journal = tmp_path / ".tscallbacks" / "journal.jsonl"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    run_record, *rest = records(journal)
    assert run_record["ci_url"] == "https://github.example.com/acme/callbacks/actions/runs/4242"
    assert run_record["user"] == "deployer" and run_record["host"]
    assert run_record["endpoint"] == "embedded-simulator"
    assert run_record["config"] == str(EXAMPLE)
    assert [r["record"] for r in rest] == ["backup", "plan", *["write"] * 10, "end"]
    assert rest[-1]["outcome"] == "ok" and rest[-1]["exit"] == 0
    assert rest[-1]["summary"] == {"create": 10, "update": 0, "delete": 0, "failed": 0,
                                   "planned": 10}  # fmt: skip

    gitlab = base_env(CI_JOB_URL="https://gitlab.example.com/acme/callbacks/-/jobs/7")
    again = run("apply", "--simulator", "--auto-approve", "-c", str(EXAMPLE), env=gitlab,
                cwd=tmp_path)  # fmt: skip
    assert again.code == 0 and "No changes." in again.stdout
    second = [r for r in records(journal) if r["run_id"] != run_record["run_id"]]
    assert [r["record"] for r in second] == ["run", "backup", "plan", "end"]
    assert second[0]["ci_url"] == "https://gitlab.example.com/acme/callbacks/-/jobs/7"
    assert second[-1]["outcome"] == "ok"


def test_failed_and_refused_runs_are_journaled_too(served: Served, tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    env = base_env(served.base)
    requests.post(f"{served.base}/_simulator/faults", json={"fail_writes": {A2: 403}},
                  timeout=10)  # fmt: skip
    failed = run("apply", "-c", str(EXAMPLE), "--auto-approve", "--journal", str(journal),
                 env=env)  # fmt: skip
    assert failed.code == 1
    found = records(journal)
    bad = [r for r in found if r["record"] == "write" and r["outcome"] == "failed"]
    assert {r["account"] for r in bad} == {A2} and all("HTTP 403" in r["error"] for r in bad)
    assert found[-1]["outcome"] == "failed" and found[-1]["exit"] == 1
    assert found[-1]["summary"]["failed"] == len(bad) == 3

    no_creds = {k: v for k, v in env.items() if k != "THINGSPACE_PASSWORD"}
    refused = run("apply", "-c", str(EXAMPLE), "--auto-approve", "--journal", str(journal),
                  env=no_creds)  # fmt: skip
    assert refused.code == 1
    last = [r for r in records(journal) if r["run_id"] != found[0]["run_id"]]
    assert [r["record"] for r in last] == ["run", "end"]  # nothing read: no backup
    assert last[-1]["outcome"] == "error" and "THINGSPACE_PASSWORD" in last[-1]["error"]

    cancelled = run("apply", "-c", str(EXAMPLE), "--journal", str(journal), env=env,
                    stdin="no\n")  # fmt: skip
    # stdin is no terminal: apply plans (and journals what it read), then refuses to ask
    assert cancelled.code == 1
    previous = {found[0]["run_id"], last[0]["run_id"]}
    unapproved = [r for r in records(journal) if r["run_id"] not in previous]
    assert [r["record"] for r in unapproved] == ["run", "backup", "plan", "end"]
    assert unapproved[-1]["outcome"] == "cancelled"


def test_an_unwritable_journal_stops_the_apply_before_anything_is_sent(
    served: Served, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("")
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve",
                 "--journal", str(tmp_path / "blocker" / "j.jsonl"),
                 env=base_env(served.base))  # fmt: skip
    assert result.code == 1
    assert result.stderr == (
        f"Error: cannot write the journal {tmp_path / 'blocker' / 'j.jsonl'}: a directory on "
        "its path is a file (choose another file with --journal)\n"
    )
    assert served.state() == {}
    assert requests.get(f"{served.base}/_simulator/requests", timeout=10).json() in ([], {
        "requests": []})  # fmt: skip


def test_the_cancelled_prompt_is_journaled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from reconciler import cli

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["apply", "--simulator", "-c", str(EXAMPLE), "--journal", "j.jsonl"],
                    env={"SMS_HOOK_PASSWORD": "x" * 12}, stdin=Tty("no\n"), stdout=out,
                    stderr=err)  # fmt: skip
    assert code == 1 and "apply cancelled" in err.getvalue()
    found = records(tmp_path / "j.jsonl")
    assert [r["record"] for r in found] == ["run", "backup", "plan", "end"]
    assert found[-1]["outcome"] == "cancelled"


def test_journal_flag_moves_the_journal(tmp_path: Path) -> None:
    result = run("apply", "--simulator", "--auto-approve", "-c", str(EXAMPLE),
                 "--journal", "x/j.jsonl", env=base_env(), cwd=tmp_path)  # fmt: skip
    assert result.code == 0, result.output
    assert sorted(p.name for p in (tmp_path / ".tscallbacks").iterdir()) == [
        "simulator.json",
        "simulator.json.lock",
    ]
    assert records(tmp_path / "x" / "j.jsonl")[-1]["outcome"] == "ok"


def test_a_journal_that_fails_mid_apply_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from reconciler import cli
    from reconciler.core.errors import OutputError
    from reconciler.engine.journal import Journal

    def disk_full(self: Journal, result: object) -> None:
        self.halt.set()  # as a failed write does (see test_journal)
        raise OutputError(f"cannot write the journal {self.path}: No space left on device")

    monkeypatch.setattr(Journal, "write", disk_full)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        ["apply", "--simulator", "--auto-approve", "-c", str(EXAMPLE), "--parallelism", "1"],
        env={"SMS_HOOK_PASSWORD": SMS_SECRET}, stdin=io.StringIO(), stdout=out, stderr=err,
    )  # fmt: skip
    assert code == 1
    assert err.getvalue().endswith("No space left on device\n")
    state = json.loads((tmp_path / ".tscallbacks" / "simulator.json").read_text())
    assert sum(len(services) for services in state["accounts"].values()) == 1  # then it stopped
    found = records(tmp_path / ".tscallbacks" / "journal.jsonl")
    assert found[-1]["outcome"] == "error" and "No space left" in found[-1]["error"]
