from __future__ import annotations

import pytest

from reconciler.core.families import FOTA, M2M, all_families
from reconciler.core.model import Key, Registration
from reconciler.engine.plan import Action
from reconciler.engine.planner import _views, families_to_read, make_plan
from tests.helpers import current, desired, reg

A = "0252012345-00001"
U1 = "https://hooks.example.com/a"
U2 = "https://hooks.example.com/b"

CASES = [
    # (name, desired callbacks, current callbacks, prune, expected [(action, service, fields)])
    ("empty both", {}, {}, True, []),
    ("create", {"DeviceUsage": reg(U1)}, {}, True, [("create", "DeviceUsage", ["url"])]),
    ("in sync", {"DeviceUsage": reg(U1)}, {"DeviceUsage": reg(U1)}, True, []),
    (
        "url drift",
        {"DeviceUsage": reg(U2)},
        {"DeviceUsage": reg(U1)},
        True,
        [("update", "DeviceUsage", ["url"])],
    ),
    (
        "username added",
        {"DeviceUsage": reg(U1, "bob")},
        {"DeviceUsage": reg(U1)},
        True,
        [("update", "DeviceUsage", ["username"])],
    ),
    (
        "password changed",
        {"DeviceUsage": reg(U1, "bob", "new-secret")},
        {"DeviceUsage": reg(U1, "bob", "old-secret")},
        True,
        [("update", "DeviceUsage", ["password"])],
    ),
    (
        "password same",
        {"DeviceUsage": reg(U1, "bob", "same-secret")},
        {"DeviceUsage": reg(U1, "bob", "same-secret")},
        True,
        [],
    ),
    (
        "password removed",
        {"DeviceUsage": reg(U1)},
        {"DeviceUsage": reg(U1, None, "old-secret")},
        True,
        [("update", "DeviceUsage", ["password"])],
    ),
    (
        "password not returned is not drift",
        {"DeviceUsage": reg(U1, None, "whatever-secret")},
        {"DeviceUsage": reg(U1, known=False)},
        True,
        [],
    ),
    (
        "prune deletes",
        {},
        {"CarrierService": reg(U1)},
        True,
        [("delete", "CarrierService", ["url"])],
    ),
    ("prune false keeps", {}, {"CarrierService": reg(U1)}, False, []),
    (
        "mixed, ordered by service",
        {"DeviceUsage": reg(U1), "Fota": reg(U2), "QoS": reg(U1)},
        {"AlertService": reg(U1), "DeviceUsage": reg(U2), "QoS": reg(U1)},
        True,
        [
            ("delete", "AlertService", ["url"]),
            ("update", "DeviceUsage", ["url"]),
            ("create", "Fota", ["url"]),
        ],
    ),
]


@pytest.mark.parametrize(
    ("want", "have", "prune", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_table(want, have, prune, expected) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(desired({A: want}, prune=prune), current({A: have}))
    got = [(c.action.value, c.service, [f.name for f in c.fields]) for c in plan.changes]
    assert got == expected


def test_families_routed_by_catalog() -> None:
    plan = make_plan(
        desired({A: {"Fota": reg(U1), "QoS": reg(U1)}}),
        current({A: {"SomethingNew": reg(U2)}}),
    )
    families = {c.service: c.family for c in plan.changes}
    assert families == {"Fota": FOTA, "QoS": M2M, "SomethingNew": M2M}


def test_accounts_sorted_and_only_declared() -> None:
    plan = make_plan(
        desired({"b": {"DeviceUsage": reg(U1)}, "a": {"DeviceUsage": reg(U1)}}),
        current({"zzz-undeclared": {"DeviceUsage": reg(U1)}}),
    )
    assert [c.key for c in plan.changes] == [Key("a", "DeviceUsage"), Key("b", "DeviceUsage")]
    assert plan.accounts == ("a", "b")


def test_counts_and_summary() -> None:
    plan = make_plan(
        desired({A: {"DeviceUsage": reg(U1), "QoS": reg(U2)}}),
        current({A: {"QoS": reg(U1), "AlertService": reg(U1)}}),
    )
    assert plan.counts() == {Action.CREATE: 1, Action.UPDATE: 1, Action.DELETE: 1}
    assert plan.summary_line() == "Plan: 1 to create, 1 to update, 1 to delete."


def test_notes_for_unknown_password_and_prune_false() -> None:
    plan = make_plan(
        desired({A: {"DeviceUsage": reg(U1, None, "hidden-secret")}}, prune=False),
        current({A: {"DeviceUsage": reg(U1, known=False), "QoS": reg(U2)}}),
    )
    assert not plan.has_changes
    assert any("password drift cannot be checked" in n and "DeviceUsage" in n for n in plan.notes)
    assert any("prune is false" in n and "QoS" in n for n in plan.notes)


def test_plan_is_deterministic() -> None:
    want = {A: {s: reg(U1) for s in ("QoS", "DeviceUsage", "Fota", "AlertService")}}
    first = make_plan(desired(want), current({}))
    second = make_plan(desired(dict(reversed(list(want.items())))), current({}))
    assert first == second


def test_password_never_in_plan_dict() -> None:
    plan = make_plan(
        desired({A: {"DeviceUsage": reg(U1, "bob", "s3cret-new-value")}}),
        current({A: {"DeviceUsage": reg(U1, "bob", "s3cret-old-value")}}),
    )
    text = repr(plan) + str(plan.to_dict())
    assert "s3cret" not in text
    fields = plan.changes[0].fields
    assert fields[0].name == "password" and fields[0].sensitive
    assert (fields[0].before, fields[0].after) == ("(sensitive)", "(sensitive)")


def test_unknown_service_is_deleted_through_the_family_that_listed_it() -> None:
    listed = Registration(url=U1, family=FOTA)
    plan = make_plan(desired({A: {}}), current({A: {"FotaV9": listed, "NewM2M": reg(U1)}}))
    assert {c.service: c.family for c in plan.changes} == {
        "FotaV9": FOTA,
        "NewM2M": M2M,
    }


def test_families_to_read() -> None:
    state = desired({"p": {"DeviceUsage": reg(U1)}})
    # Pruning, no manage: list: what version 1 always read, never every family.
    assert families_to_read(state) == {"p": frozenset({M2M, FOTA})}
    assert frozenset(all_families()) != frozenset({M2M, FOTA})
    kept = desired({"a": {"Fota": reg(U1)}, "b": {"QoS": reg(U1)}, "c": {}}, prune=False)
    assert families_to_read(kept) == {
        "a": frozenset({FOTA}),
        "b": frozenset({M2M}),
        "c": frozenset(),
    }


def test_unchanged_registrations_never_reach_deepdiff() -> None:
    """A no-op plan of a large fleet compares fields directly; deepdiff (and its import)
    is only for what differs. Same URL, username and password; a password the API does
    not return; a literal password against the same one: no change, nothing diffed."""
    want = {
        f"A-{n}": {
            "DeviceUsage": reg(U1, "user", "pw"),
            "QoS": reg(U2, None, "hidden"),
            "Fota": reg(U1),
        }
        for n in range(50)
    }
    have = {
        f"A-{n}": {
            "DeviceUsage": reg(U1, "user", "pw"),
            "QoS": reg(U2, known=False),
            "Fota": reg(U1),
        }
        for n in range(50)
    }
    assert _views(desired(want), current(have)) == (set(), set(), {}, {})
    assert not make_plan(desired(want), current(have)).has_changes
    have["A-7"]["DeviceUsage"] = reg(U1, "user", "other")
    _, _, before, after = _views(desired(want), current(have))
    assert set(before) == set(after) == {"A-7"}
    assert set(before["A-7"]) == set(after["A-7"]) == {"DeviceUsage"}
    assert before["A-7"]["DeviceUsage"]["password"] != after["A-7"]["DeviceUsage"]["password"]
