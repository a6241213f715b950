"""How ``apply`` is approved, and ``apply --output json`` for pipelines.

A saved plan is the approval (as in Terraform); nothing to change needs no approval at
all; otherwise ``yes`` at a terminal or ``--auto-approve``. End to end against the
simulator over real HTTP.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.core.families import M2M
from reconciler.core.model import Key
from reconciler.engine.executor import ChangeResult
from reconciler.engine.plan import Action, Change, FieldChange, Plan
from reconciler.render.apply_json import apply_result
from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS, Credentials
from tests.e2e_support import EXAMPLE, SMS_SECRET, base_env, run

pytestmark = pytest.mark.e2e

A1, A2 = "0252012345-00001", "0252012345-00002"
EXAMPLE_WRITES = 10
SECRETS = (SMS_SECRET, *SIMULATOR_DEFAULTS.values())


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def writes(sim: Simulator) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in sim.requests()
        if r.method in ("POST", "DELETE") and "/callbacks/" in r.path
    ]


def in_process(sim: Simulator, *argv: str, stdin: io.StringIO) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env=base_env(sim.base_url), stdin=stdin, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def converged(sim: Simulator) -> bool:
    result = run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=base_env(sim.base_url))
    return result.code == 0


# --- approval -------------------------------------------------------------------------


def test_a_saved_plan_is_the_approval_without_a_terminal(sim: Simulator, tmp_path: Path) -> None:
    env = base_env(sim.base_url)
    planfile = tmp_path / "tfplan.json"
    assert run("plan", "-c", str(EXAMPLE), "--out", str(planfile), env=env).code == 0
    applied = run("apply", str(planfile), env=env)  # stdin is /dev/null, no --auto-approve
    assert applied.code == 0, applied.output
    assert "Enter a value" not in applied.output and "refusing" not in applied.output
    assert "Apply complete! Changes made: 10 created" in applied.stdout
    assert len(writes(sim)) == EXAMPLE_WRITES
    assert converged(sim)


def test_a_saved_plan_is_not_asked_about_at_a_terminal(sim: Simulator, tmp_path: Path) -> None:
    planfile = tmp_path / "tfplan.json"
    assert run("plan", "-c", str(EXAMPLE), "--out", str(planfile),
               env=base_env(sim.base_url)).code == 0  # fmt: skip
    code, out, err = in_process(sim, "apply", str(planfile), stdin=FakeTty(""))
    assert code == 0, err
    assert "Enter a value" not in out and "Apply complete!" in out


def test_a_stale_saved_plan_is_still_refused_without_asking(sim: Simulator, tmp_path: Path) -> None:
    env = base_env(sim.base_url)
    planfile = tmp_path / "tfplan.json"
    assert run("plan", "-c", str(EXAMPLE), "--out", str(planfile), env=env).code == 0
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    sim.clear_requests()
    stale = run("apply", str(planfile), env=env)
    assert stale.code == 1 and "stale" in stale.stderr
    assert writes(sim) == []


@pytest.mark.parametrize("terminal", [False, True])
def test_nothing_to_change_exits_0_without_asking(sim: Simulator, terminal: bool) -> None:
    env = base_env(sim.base_url)
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    sim.clear_requests()
    if terminal:
        code, out, err = in_process(sim, "apply", "-c", str(EXAMPLE), stdin=FakeTty(""))
    else:
        result = run("apply", "-c", str(EXAMPLE), env=env)
        code, out, err = result.code, result.stdout, result.stderr
    assert code == 0, err
    assert out.startswith("No changes.")
    assert "Enter a value" not in out and "refusing" not in err
    assert writes(sim) == []


def test_changes_without_a_terminal_are_refused_after_the_plan(sim: Simulator) -> None:
    result = run("apply", "-c", str(EXAMPLE), env=base_env(sim.base_url))
    assert result.code == 1
    assert "Plan: 10 to create" in result.stdout  # what would have been done
    assert result.stderr.startswith("Error: refusing to apply without confirmation")
    assert "not a terminal" in result.stderr and "--auto-approve" in result.stderr
    assert writes(sim) == []


# --- apply --output json --------------------------------------------------------------


def test_json_result_on_stdout_and_progress_on_stderr(sim: Simulator) -> None:
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", "--output", "json",
                 env=base_env(sim.base_url))  # fmt: skip
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)  # the whole of stdout is one document
    assert doc["status"] == "applied"
    assert doc["summary"] == {"create": 10, "update": 0, "delete": 0}
    assert doc["applied"] == {"create": 10, "update": 0, "delete": 0}
    assert doc["counts"] == {"ok": 10, "failed": 0, "not_attempted": 0}
    assert len(doc["changes"]) == 10
    first = doc["changes"][0]
    assert first == {
        "action": "create",
        "account": A1,
        "service": "CarrierService",
        "family": "m2m",
        "outcome": "ok",
        "error": None,
    }
    assert {c["family"] for c in doc["changes"]} == {"m2m", "fota"}
    assert "Plan: 10 to create" in result.stderr and f"{A1}/Fota: created" in result.stderr
    assert "Apply complete!" in result.stderr
    for secret in SECRETS:
        assert secret not in result.output


def test_json_result_names_each_failure(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"fail_writes": {A2: 400}}))
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", "--output", "json",
                 env=base_env(sim.base_url))  # fmt: skip
    assert result.code == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed"
    assert doc["counts"] == {"ok": 7, "failed": 3, "not_attempted": 0}
    failed = [c for c in doc["changes"] if c["outcome"] == "failed"]
    assert {c["account"] for c in failed} == {A2}
    assert all("HTTP 400" in c["error"] for c in failed)
    assert result.stderr.splitlines()[-1] == "Error: apply failed: 3 of 10 changes failed"


def test_json_result_marks_what_a_stopped_run_did_not_attempt(sim: Simulator) -> None:
    # every write to A2 answers 503: retried, then the circuit breaker stops the run
    sim.set_faults(FaultSettings.from_dict({"fail_writes": {A2: 503}}))
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", "--output", "json",
                 "--parallelism", "1", env=base_env(sim.base_url))  # fmt: skip
    assert result.code == 1
    doc = json.loads(result.stdout)
    outcomes = [(c["account"], c["outcome"]) for c in doc["changes"]]
    assert (A2, "failed") in outcomes and ("TestAccount-2", "not_attempted") in outcomes
    assert doc["counts"]["not_attempted"] >= 1
    assert sum(doc["counts"].values()) == 10
    assert all(c["error"] for c in doc["changes"] if c["outcome"] != "ok")


def test_json_result_with_nothing_to_change(sim: Simulator) -> None:
    env = base_env(sim.base_url)
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    result = run("apply", "-c", str(EXAMPLE), "--output", "json", env=env)  # no approval needed
    assert result.code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "no_changes" and doc["changes"] == []
    assert doc["counts"] == {"ok": 0, "failed": 0, "not_attempted": 0}


def test_json_never_asks(sim: Simulator) -> None:
    code, out, err = in_process(
        sim, "apply", "-c", str(EXAMPLE), "--output", "json", stdin=FakeTty("yes\n")
    )
    assert code == 1 and out == ""
    assert "--output json does not ask for confirmation" in err
    assert writes(sim) == []


def test_json_with_a_saved_plan(sim: Simulator, tmp_path: Path) -> None:
    env = base_env(sim.base_url)
    planfile = tmp_path / "tfplan.json"
    assert run("plan", "-c", str(EXAMPLE), "--out", str(planfile), env=env).code == 0
    result = run("apply", str(planfile), "--output", "json", env=env)
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["counts"]["ok"] == 10


# --- the document, unit ---------------------------------------------------------------


def _change(service: str) -> Change:
    field = FieldChange("url", None, "https://h.example.com/" + service)
    return Change(Action.CREATE, Key("A-1", service), M2M, None, None, (field,))


def test_document_outcomes_and_hostile_error_text() -> None:
    changes = tuple(_change(s) for s in ("AlertService", "CarrierService", "DeviceUsage"))
    plan = Plan(changes)
    hostile = 'POST /x: HTTP 400 bad\n\x1b[2J\u202e"quoted"'
    results = [
        ChangeResult(changes[0]),
        ChangeResult(changes[1], error=hostile),
        ChangeResult(changes[2], error="not attempted: stopped", attempted=False),
    ]
    doc = apply_result(plan, results)
    assert [c["outcome"] for c in doc["changes"]] == ["ok", "failed", "not_attempted"]
    assert doc["changes"][1]["error"] == hostile
    assert doc["applied"] == {"create": 1, "update": 0, "delete": 0}
    assert doc["status"] == "failed"
    out = io.StringIO()
    from reconciler.render.apply_json import render_apply_json

    render_apply_json(plan, results, out)
    text = out.getvalue()
    assert text.isascii() and all(line.isprintable() for line in text.splitlines())
    assert json.loads(text) == doc
    # a change with no result at all (the run ended first) was not attempted either
    assert apply_result(plan, results[:1])["counts"] == {"ok": 1, "failed": 0, "not_attempted": 2}
