"""Saved plan files: what they hold, what they never hold, and how they are refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.errors import UsageError
from reconciler.core.families import M2M, FamilySpec, all_families
from reconciler.core.model import CurrentState
from reconciler.engine.plan import Plan
from reconciler.engine.planner import families_to_read, make_plan
from reconciler.engine.safety import SafetyPolicy
from reconciler.engine.saved_plan import (
    PlanFileError,
    SavedPlan,
    check_accounts,
    check_fresh,
    check_policy,
    check_target,
    make_saved_plan,
    read_saved_plan,
    remote_digest,
    write_saved_plan,
)
from reconciler.engine.target import Target, restrict, select
from tests.helpers import current, desired, reg

A, B = "0252012345-00001", "0252012345-00002"
U = "https://hooks.example.com/u"
SECRET = "saved-plan-secret-value"


def build(tmp_path: Path) -> tuple[Path, Plan, CurrentState, dict[str, frozenset[FamilySpec]]]:
    want = desired({A: {"DeviceUsage": reg(U, "ops", SECRET), "Fota": reg(U + "/f")}})
    have = current({A: {"DeviceUsage": reg(U, "ops", "remote-secret-value")}})
    wanted = families_to_read(want)
    plan = make_plan(want, have)
    saved = make_saved_plan(
        plan, have, wanted, endpoint="https://x.example.com", config_path="c.yaml"
    )
    path = tmp_path / "plan.json"
    write_saved_plan(saved, str(path))
    return path, plan, have, wanted


def test_round_trip_and_no_secret(tmp_path: Path) -> None:
    path, plan, have, wanted = build(tmp_path)
    text = path.read_text()
    assert SECRET not in text and "remote-secret-value" not in text
    loaded = read_saved_plan(str(path))
    assert loaded.plan == plan.to_dict()
    assert loaded.wanted() == wanted
    check_fresh(
        loaded,
        planned_wanted=wanted,
        plan=plan,
        current=have,
        path=str(path),
    )
    assert not list(tmp_path.glob(".plan.json.*"))  # no temp file left behind


def test_digest_ignores_password_values_but_sees_the_rest() -> None:
    wanted = {A: frozenset(all_families())}
    base = remote_digest(current({A: {"DeviceUsage": reg(U, None, "one-secret")}}), wanted)
    other_pw = remote_digest(current({A: {"DeviceUsage": reg(U, None, "two-secret")}}), wanted)
    no_pw = remote_digest(current({A: {"DeviceUsage": reg(U)}}), wanted)
    moved = remote_digest(current({A: {"DeviceUsage": reg(U + "x", None, "one-secret")}}), wanted)
    assert base == other_pw
    assert len({base, no_pw, moved}) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("remote", "remote state changed"),
        ("plan", "changes needed now differ"),
        ("wanted", "covers different accounts"),
    ],
)
def test_stale_is_refused(tmp_path: Path, change: str, message: str) -> None:
    path, plan, have, wanted = build(tmp_path)
    loaded = read_saved_plan(str(path))
    kwargs: dict[str, Any] = {
        "planned_wanted": wanted,
        "plan": plan,
        "current": have,
        "path": str(path),
    }
    if change == "remote":
        kwargs["current"] = current({A: {"DeviceUsage": reg(U + "/moved", "ops", "z-secret")}})
    elif change == "plan":
        kwargs["plan"] = make_plan(desired({A: {}}), have)
    else:
        kwargs["planned_wanted"] = {A: frozenset({M2M})}
    with pytest.raises(PlanFileError, match=message):
        check_fresh(loaded, **kwargs)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "not written by"),
        (b'{"kind": "something-else"}', "not written by"),
        (b'{"kind": "tscallbacks-saved-plan", "format_version": "9"}', "format version"),
        (b'{"kind": "tscallbacks-saved-plan", "format_version": "1"}', "incomplete"),
    ],
)
def test_bad_plan_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(PlanFileError, match=message):
        read_saved_plan(str(path))


def test_edited_families_are_refused(tmp_path: Path) -> None:
    path, *_ = build(tmp_path)
    doc = json.loads(path.read_text())
    doc["remote"]["families"][A] = ["soap"]
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match="incomplete or was edited"):
        read_saved_plan(str(path))


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot read plan file"):
        read_saved_plan(str(tmp_path / "nope.json"))


def test_other_endpoint_is_refused(tmp_path: Path) -> None:
    path, *_ = build(tmp_path)
    loaded = read_saved_plan(str(path))
    check_target(loaded, endpoint="https://x.example.com", path=str(path))
    with pytest.raises(PlanFileError, match=re.escape("made against https://x.example.com, not")):
        check_target(loaded, endpoint="https://y.example.com", path=str(path))


# -- brakes' overrides and the --account target --------------------------------------------


def saved_with(
    tmp_path: Path, *, policy: SafetyPolicy | None = None, patterns: tuple[str, ...] = ()
) -> tuple[Path, SavedPlan]:
    state = desired({A: {"DeviceUsage": reg(U)}, B: {}, "lab-1": {}})
    chosen = select(state, list(patterns))
    have = current({a: {} for a in chosen.accounts})
    wanted = families_to_read(restrict(state, chosen))
    saved = make_saved_plan(
        make_plan(restrict(state, chosen), have, policy=policy),
        have,
        wanted,
        endpoint="https://x.example.com",
        config_path="c.yaml",
        policy=policy,
        target=chosen,
    )
    path = tmp_path / "plan.json"
    write_saved_plan(saved, str(path))
    return path, read_saved_plan(str(path))


def test_overrides_and_target_are_recorded(tmp_path: Path) -> None:
    policy = SafetyPolicy(allow_protected=True, max_deletes=3)
    path, loaded = saved_with(tmp_path, policy=policy, patterns=("0252*",))
    assert loaded.policy == policy
    assert loaded.target == Target(("0252*",), (A, B))
    doc = json.loads(path.read_text())
    assert doc["safety"] == {"allow_protected": True, "force": False, "max_deletes": 3}
    assert doc["target"] == {"patterns": ["0252*"], "accounts": [A, B]}
    _, untargeted = saved_with(tmp_path)
    assert untargeted.target is None and untargeted.policy == SafetyPolicy()


def test_a_plan_file_from_before_brakes_reads_as_no_override_no_target(tmp_path: Path) -> None:
    path, *_ = build(tmp_path)
    doc = json.loads(path.read_text())
    del doc["safety"], doc["target"]
    path.write_text(json.dumps(doc))
    loaded = read_saved_plan(str(path))
    assert loaded.policy == SafetyPolicy() and loaded.target is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("safety", {"allow_protected": True}),
        ("safety", {"allow_protected": False, "force": True, "max_deletes": 2}),
        ("target", {"patterns": [], "accounts": []}),
        ("target", {"patterns": ["a*"], "accounts": [1]}),
        ("target", ["a*"]),
    ],
)
def test_edited_overrides_or_target_are_refused(tmp_path: Path, key: str, value: object) -> None:
    path, *_ = build(tmp_path)
    doc = json.loads(path.read_text())
    doc[key] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match="incomplete or was edited"):
        read_saved_plan(str(path))


def test_check_policy(tmp_path: Path) -> None:
    path, loaded = saved_with(tmp_path, policy=SafetyPolicy(max_deletes=3))
    where = str(path)
    assert check_policy(loaded, SafetyPolicy(), path=where) == SafetyPolicy(max_deletes=3)
    assert check_policy(loaded, SafetyPolicy(max_deletes=1), path=where).max_deletes == 1
    for wider, flag in [
        (SafetyPolicy(allow_protected=True), "--allow-protected"),
        (SafetyPolicy(force=True), "--force"),
        (SafetyPolicy(max_deletes=4), "--max-deletes 4"),
    ]:
        with pytest.raises(PlanFileError, match=f"made without {flag}; apply PLANFILE cannot"):
            check_policy(loaded, wider, path=where)
    _, forced = saved_with(tmp_path, policy=SafetyPolicy(force=True))
    assert check_policy(forced, SafetyPolicy(force=True), path=where).force
    with pytest.raises(PlanFileError, match="made with --force, which releases --max-deletes"):
        check_policy(forced, SafetyPolicy(max_deletes=1), path=where)


def test_check_accounts(tmp_path: Path) -> None:
    path, loaded = saved_with(tmp_path, patterns=("0252*",))
    where = str(path)
    now = desired({A: {}, B: {}, "lab-1": {}, "0252999999-00001": {}})
    # No --account: the recorded accounts, even if the patterns would now match more.
    assert check_accounts(loaded, now, [], path=where) == loaded.target
    assert check_accounts(loaded, now, [A, B], path=where) == loaded.target
    with pytest.raises(PlanFileError, match=r"would widen the saved plan: it selects 'lab-1'"):
        check_accounts(loaded, now, [A, B, "lab-*"], path=where)
    with pytest.raises(PlanFileError, match=f"leaves out '{B}', which the saved plan covers"):
        check_accounts(loaded, now, [A], path=where)
    with pytest.raises(UsageError, match="matches no account"):
        check_accounts(loaded, now, ["nothing-*"], path=where)
    with pytest.raises(PlanFileError, match=f"stale: the configuration no longer declares '{B}'"):
        check_accounts(loaded, desired({A: {}}), [], path=where)


def test_check_accounts_of_an_untargeted_plan(tmp_path: Path) -> None:
    path, loaded = saved_with(tmp_path)
    now = desired({A: {}, B: {}, "lab-1": {}})
    assert check_accounts(loaded, now, ["*"], path=str(path)) == Target((), (A, B, "lab-1"))
    with pytest.raises(PlanFileError, match="leaves out"):
        check_accounts(loaded, now, ["lab-*"], path=str(path))
