"""``Plan.from_dict``: a plan read back from its serialization is the plan that was shown,
and anything else is refused."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.secrets import SENSITIVE
from reconciler.engine.plan import Plan, PlanDataError, RecordedSecret
from reconciler.engine.saved_plan import (
    PlanFileError,
    check_fresh,
    make_saved_plan,
    read_saved_plan,
    write_saved_plan,
)
from reconciler.render import RENDERERS, renderer
from tests.helpers import current, desired, reg
from tests.test_render import WARNINGS, hostile_plan, sample_plan


def shown(plan: Plan, name: str) -> str:
    out = io.StringIO()
    renderer(name)(plan, out)
    return out.getvalue()


@pytest.mark.parametrize("make", [sample_plan, hostile_plan])
def test_round_trip_is_the_same_plan(make: Callable[[], Plan]) -> None:
    plan = make()
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.to_dict() == plan.to_dict()
    assert [c.fields for c in again.changes] == [c.fields for c in plan.changes]
    assert [(c.action, c.key, c.family) for c in again.changes] == [
        (c.action, c.key, c.family) for c in plan.changes
    ]
    # a whole-file warning (line 0) reads back as it is shown: at 1:1
    assert [str(w) for w in again.warnings] == [str(w) for w in plan.warnings]
    assert again.notes == plan.notes
    for name in RENDERERS:
        assert shown(again, name) == shown(plan, name)


def test_a_plan_saved_before_warnings_were_recorded_reads() -> None:
    data = replace(sample_plan(), warnings=()).to_dict()
    del data["warnings"]
    assert Plan.from_dict(data).warnings == ()


def test_recorded_passwords_have_no_value() -> None:
    plan = Plan.from_dict(sample_plan().to_dict())
    update = next(c for c in plan.changes if c.action.value == "update")
    assert update.after is not None and isinstance(update.after.password, RecordedSecret)
    assert str(update.after.password) == SENSITIVE
    with pytest.raises(TypeError, match="no password values"):
        update.after.password.reveal()


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return edit


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.pop(key)


# Edits of sample_plan().to_dict(); its changes are delete, create, create, update.
EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "version": (_set(("format_version",), "2"), "format version"),
    "changes": (_set(("changes",), {}), "changes is not a list"),
    "action": (_set(("changes", 0, "action"), "destroy"), "create, update or delete"),
    "family": (_set(("changes", 0, "family"), "soap"), "API family"),
    "account": (_set(("changes", 0, "account"), 7), "account is not a string"),
    "password": (_set(("changes", 3, "after", "password"), "hunter22"), "masked value"),
    "field": (_set(("changes", 1, "changed_fields"), ["url", "colour"]), "did not change"),
    "empty field": (_set(("changes", 1, "changed_fields"), ["username"]), "did not change"),
    "summary": (_set(("summary", "create"), 0), "does not match"),
    "extra": (_set(("changes", 0, "extra"), 1), "does not match"),
    "notes": (_set(("notes",), [1]), r"notes\[0\] is not a string"),
    "warning line": (_set(("warnings", 0, "line"), True), "line or column"),
    "warning path": (_set(("warnings", 1, "path"), None), "path is not a string"),
    "accounts": (_drop("accounts"), "accounts is not a list"),
}


@pytest.mark.parametrize("name", sorted(EDITS))
def test_edited_data_is_refused(name: str) -> None:
    edit, message = EDITS[name]
    doc = copy.deepcopy(sample_plan().to_dict())
    edit(doc)
    with pytest.raises(PlanDataError, match=message):
        Plan.from_dict(doc)


@pytest.mark.parametrize("data", [None, [], "plan", 3])
def test_not_a_plan_at_all(data: object) -> None:
    with pytest.raises(PlanDataError, match="the plan is not an object"):
        Plan.from_dict(data)


def test_a_saved_plan_with_an_edited_plan_is_refused_on_reading(tmp_path: Path) -> None:
    want = desired({"A-1": {"DeviceUsage": reg("https://h.example.com/u")}})
    have = current({})
    saved = make_saved_plan(
        make_plan_with_warnings(want, have), have, {}, endpoint="e", config_path="c.yaml"
    )
    path = tmp_path / "p.json"
    write_saved_plan(saved, str(path))
    assert [str(w) for w in read_saved_plan(str(path)).to_plan().warnings] == [
        str(w) for w in WARNINGS
    ]
    doc = json.loads(path.read_text())
    doc["plan"]["changes"][0]["after"]["password"] = "a-password-value"
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match=r"incomplete or was edited \(changes\[0\]\.after"):
        read_saved_plan(str(path))


def make_plan_with_warnings(*args: Any) -> Plan:
    from reconciler.engine.planner import make_plan

    return replace(make_plan(*args), warnings=WARNINGS)


def test_warnings_are_not_part_of_what_apply_must_match(tmp_path: Path) -> None:
    from reconciler.engine.planner import families_to_read

    want = desired({"A-1": {"DeviceUsage": reg("https://h.example.com/u")}})
    have = current({})
    wanted = families_to_read(want)
    saved = make_saved_plan(
        make_plan_with_warnings(want, have), have, wanted, endpoint="e", config_path="c.yaml"
    )
    # apply reads the configuration through another path: its warnings name other files
    from reconciler.engine.planner import make_plan

    fresh = replace(make_plan(want, have), warnings=WARNINGS[:1])
    check_fresh(saved, planned_wanted=wanted, plan=fresh, current=have, path="p.json")
