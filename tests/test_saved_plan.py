"""Saved plan files: what they hold, what they never hold, and how they are refused."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.families import M2M, FamilySpec, all_families
from reconciler.core.model import CurrentState
from reconciler.engine.plan import Plan
from reconciler.engine.planner import families_to_read, make_plan
from reconciler.engine.saved_plan import (
    PlanFileError,
    check_fresh,
    check_target,
    make_saved_plan,
    read_saved_plan,
    remote_digest,
    write_saved_plan,
)
from tests.helpers import current, desired, reg

A = "0252012345-00001"
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
