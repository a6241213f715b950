"""Brakes, as pure functions: which rules a plan sets off, and how apply is refused."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from reconciler.core.model import DesiredAccount, DesiredState, Key
from reconciler.engine.plan import Action, Plan
from reconciler.engine.planner import delete_reason, make_plan
from reconciler.engine.safety import (
    DELETE_THRESHOLD,
    MAX_DELETES,
    PROTECTED,
    SafetyPolicy,
    UnsafePlanError,
    assess,
    assessed,
    raise_if_unsafe,
)
from tests.helpers import M2M_SERVICES, current, desired, reg

A, B = "acct-1", "acct-2"
SERVICES = M2M_SERVICES[:12]


def url(service: str) -> str:
    return f"https://hooks.example.com/{service}"


def pruning(managed: int, keep: int, policy: SafetyPolicy | None = None) -> Plan:
    """``managed`` registrations live, the first ``keep`` of them declared."""
    live = {s: reg(url(s)) for s in SERVICES[:managed]}
    want = {s: reg(url(s)) for s in SERVICES[:keep]}
    return make_plan(desired({A: want}), current({A: live}), policy=policy)


def rules(plan: Plan) -> list[tuple[str, bool]]:
    return [(b.rule, b.released) for b in plan.brakes]


# -- the delete threshold ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("managed", "keep", "fires"),
    [
        (10, 7, False),  # 3 of 10 = 30 %: not more than 30 %
        (10, 6, True),  # 4 of 10 = 40 %
        (12, 8, True),  # 4 of 12 = 33.3 %
        (12, 9, False),  # 3 of 12 = 25 %
        (9, 0, False),  # fewer than 10 managed: the threshold does not apply
        (10, 0, True),  # all of them
    ],
)
def test_delete_threshold(managed: int, keep: int, fires: bool) -> None:
    plan = pruning(managed, keep)
    assert plan.counts()[Action.DELETE] == managed - keep
    assert plan.managed == managed
    assert rules(plan) == ([(DELETE_THRESHOLD, False)] if fires else [])
    assert plan.refused is fires


def test_threshold_message_says_what_fired() -> None:
    (brake,) = pruning(12, 8).brakes
    assert brake.message == (
        "4 of 12 managed registrations (33.3 %) would be deleted, more than 30 %"
    )
    assert brake.flag == "--force"
    (whole,) = pruning(10, 6).brakes
    assert "(40 %)" in whole.message


def test_managed_counts_every_planned_account_but_not_others() -> None:
    live = {s: reg(url(s)) for s in SERVICES[:6]}
    want = desired({A: {}, B: dict(live)})  # A: 6 deleted, B: 6 kept
    plan = make_plan(want, current({A: live, B: live, "elsewhere": live}))
    assert plan.managed == 12
    assert rules(plan) == [(DELETE_THRESHOLD, False)]  # 6 of 12 = 50 %


def test_force_releases_the_threshold() -> None:
    assert rules(pruning(10, 0, SafetyPolicy(force=True))) == [(DELETE_THRESHOLD, True)]
    assert not pruning(10, 0, SafetyPolicy(force=True)).refused


# -- --max-deletes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "fires"), [(0, True), (1, True), (2, False), (5, False)])
def test_max_deletes(limit: int, fires: bool) -> None:
    plan = pruning(
        3, 1, SafetyPolicy(max_deletes=limit)
    )  # 2 deletes; too few managed for the threshold
    assert rules(plan) == ([(MAX_DELETES, False)] if fires else [])
    if fires:
        assert plan.brakes[0].message == (
            f"2 registrations would be deleted, more than --max-deletes {limit}"
        )


def test_no_limit_means_only_the_threshold() -> None:
    assert rules(pruning(3, 0)) == []


# -- protect -----------------------------------------------------------------------------------


def protected_state(*, account: bool, registration: bool) -> DesiredState:
    callbacks = {
        "DeviceUsage": replace(reg(url("moved")), protect=registration),
        "AlertService": reg(url("AlertService")),  # created: never held back
    }
    return DesiredState(
        MappingProxyType({A: DesiredAccount(A, True, MappingProxyType(callbacks), protect=account)})
    )


LIVE = current({A: {"DeviceUsage": reg(url("DeviceUsage")), "QoS": reg(url("QoS"))}})


def test_account_protect_covers_updates_and_prunes_not_creates() -> None:
    plan = make_plan(protected_state(account=True, registration=False), LIVE)
    marks = {(c.action, c.service): c.protected for c in plan.changes}
    assert marks == {
        (Action.CREATE, "AlertService"): False,
        (Action.UPDATE, "DeviceUsage"): True,
        (Action.DELETE, "QoS"): True,
    }
    assert rules(plan) == [(PROTECTED, False)]
    assert plan.brakes[0].message == "2 changes touch protected registrations"


def test_registration_protect_covers_its_own_changes() -> None:
    plan = make_plan(protected_state(account=False, registration=True), LIVE)
    assert [c.service for c in plan.changes if c.protected] == ["DeviceUsage"]
    assert plan.brakes[0].message == "1 change touches protected registrations"


def test_protect_alone_is_no_change() -> None:
    same = DesiredState(
        MappingProxyType(
            {
                A: DesiredAccount(
                    A,
                    False,
                    MappingProxyType(
                        {"DeviceUsage": replace(reg(url("DeviceUsage")), protect=True)}
                    ),
                    protect=True,
                )
            }
        )
    )
    plan = make_plan(same, LIVE)
    assert plan.changes == () and plan.brakes == ()


def test_allow_protected_releases_only_protect() -> None:
    live = current({A: {s: reg(url(s)) for s in SERVICES[:10]}})
    want = DesiredState(MappingProxyType({A: DesiredAccount(A, True, protect=True)}))
    plan = make_plan(want, live, policy=SafetyPolicy(allow_protected=True))
    assert rules(plan) == [(PROTECTED, True), (DELETE_THRESHOLD, False)]
    forced = make_plan(want, live, policy=SafetyPolicy(force=True))
    assert rules(forced) == [(PROTECTED, False), (DELETE_THRESHOLD, True)]


# -- raise_if_unsafe ---------------------------------------------------------------------------


def test_raise_if_unsafe_lists_each_protected_change_then_each_rule() -> None:
    live = current({A: {s: reg(url(s)) for s in SERVICES[:10]}})
    want = DesiredState(
        MappingProxyType(
            {
                A: DesiredAccount(
                    A,
                    True,
                    MappingProxyType({s: reg(url(s)) for s in SERVICES[:8]}),
                    protect=True,
                )
            }
        )
    )
    plan = make_plan(want, live)
    with pytest.raises(UnsafePlanError) as caught:
        raise_if_unsafe(plan, SafetyPolicy(max_deletes=1))
    assert caught.value.lines() == [
        f"{A}/{SERVICES[8]}: refusing to delete a protected registration; "
        "--allow-protected lets it through",
        f"{A}/{SERVICES[9]}: refusing to delete a protected registration; "
        "--allow-protected lets it through",
        "2 registrations would be deleted, more than --max-deletes 1; --force lets it through",
        "refusing to apply: nothing was changed",
    ]
    raise_if_unsafe(plan, SafetyPolicy(allow_protected=True, max_deletes=2))  # all released


def test_raise_if_unsafe_judges_by_the_policy_given_not_the_plans_own() -> None:
    plan = pruning(10, 0, SafetyPolicy(force=True))
    assert not plan.refused
    with pytest.raises(UnsafePlanError, match="nothing was changed"):
        raise_if_unsafe(plan, SafetyPolicy())
    raise_if_unsafe(assessed(plan, SafetyPolicy()), SafetyPolicy(force=True))


def test_a_safe_plan_passes() -> None:
    raise_if_unsafe(pruning(10, 7), SafetyPolicy())
    raise_if_unsafe(make_plan(desired({}), current({})), SafetyPolicy(max_deletes=0))


def test_assess_is_pure_over_changes_and_count() -> None:
    plan = pruning(10, 0)
    assert assess(plan.changes, 100, SafetyPolicy()) == ()  # 10 of 100
    assert assess((), 100, SafetyPolicy(max_deletes=0)) == ()


# -- delete reasons ----------------------------------------------------------------------------


def test_every_delete_says_why() -> None:
    plan = make_plan(
        desired({A: {}}),
        current({A: {"DeviceUsage": reg(url("d")), "BrandNewService": reg(url("n"))}}),
    )
    reasons = {c.key: c.reason for c in plan.changes}
    assert reasons == {
        Key(A, "BrandNewService"): "not declared (a service tscallbacks does not know); "
        "prune is on for this account",
        Key(A, "DeviceUsage"): "not declared; prune is on for this account",
    }
    assert delete_reason("DeviceUsage") == "not declared; prune is on for this account"
    assert plan.to_dict()["changes"][1]["reason"] == "not declared; prune is on for this account"


def test_only_deletes_have_a_reason() -> None:
    plan = make_plan(
        desired({A: {"DeviceUsage": reg(url("new")), "QoS": reg(url("q"))}}),
        current({A: {"DeviceUsage": reg(url("old"))}}),
    )
    assert [(c.action, c.reason) for c in plan.changes] == [
        (Action.UPDATE, None),
        (Action.CREATE, None),
    ]


# -- the policy as data ------------------------------------------------------------------------


def test_policy_round_trip_and_malformed() -> None:
    for policy in (
        SafetyPolicy(),
        SafetyPolicy(allow_protected=True, force=True),
        SafetyPolicy(max_deletes=0),
    ):
        assert SafetyPolicy.from_dict(policy.to_dict()) == policy
    bad: object
    for bad in (
        None,
        [],
        {"allow_protected": False, "force": False},
        {"allow_protected": "yes", "force": False, "max_deletes": None},
        {"allow_protected": False, "force": False, "max_deletes": -1},
        {"allow_protected": False, "force": False, "max_deletes": True},
        {"allow_protected": False, "force": True, "max_deletes": 3},
    ):
        assert SafetyPolicy.from_dict(bad) is None


def test_wider_and_narrower() -> None:
    saved = SafetyPolicy(max_deletes=5)
    assert SafetyPolicy().wider_than(saved) == []
    assert SafetyPolicy(max_deletes=3).wider_than(saved) == []
    assert SafetyPolicy(max_deletes=6).wider_than(saved) == ["--max-deletes 6"]
    assert SafetyPolicy(allow_protected=True, force=True).wider_than(saved) == [
        "--allow-protected",
        "--force",
    ]
    assert SafetyPolicy(max_deletes=9).wider_than(SafetyPolicy()) == []  # a limit is stricter
    assert saved.narrowed_by(SafetyPolicy(max_deletes=3)).max_deletes == 3
    assert saved.narrowed_by(SafetyPolicy()).max_deletes == 5
    assert SafetyPolicy().narrowed_by(SafetyPolicy(max_deletes=2)).max_deletes == 2
