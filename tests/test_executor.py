from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from reconciler.core.errors import ApiError, ApplyError, AuthError
from reconciler.core.families import FOTA, M2M, FamilySpec, all_families
from reconciler.core.model import CurrentState, Registration
from reconciler.engine.executor import AccountsHaltedError, ApplyReport, apply_plan
from reconciler.engine.guard import Basis
from reconciler.engine.plan import Plan
from reconciler.engine.planner import make_plan
from reconciler.thingspace.guard import RunStopped
from tests.helpers import current, desired, reg

U = "https://hooks.example.com/x"


class FakeWriter:
    """An in-memory API: listings of ``state``, and writes that change it."""

    def __init__(
        self,
        fail: dict[tuple[str, str], Exception] | None = None,
        state: CurrentState | None = None,
    ) -> None:
        self.calls: list[tuple[str, str, FamilySpec, str, str | None]] = []
        self.reads: list[tuple[str, FamilySpec]] = []
        self.updates: list[bool] = []
        self.fail = fail or {}
        self.lock = threading.Lock()
        self.state: dict[str, dict[str, Registration]] = {
            account: dict(regs) for account, regs in (state or current({})).accounts.items()
        }

    def listing(self, account: str, family: FamilySpec) -> dict[str, Registration]:
        with self.lock:
            self.reads.append((account, family))
            regs = self.state.get(account, {})
            return {s: r for s, r in regs.items() if r.family is family}

    def _record(
        self, verb: str, account: str, family: FamilySpec, service: str, url: str | None
    ) -> None:
        with self.lock:
            self.calls.append((verb, account, family, service, url))
        if (account, service) in self.fail:
            raise self.fail[(account, service)]

    def register(
        self,
        account: str,
        family: FamilySpec,
        service: str,
        registration: Registration,
        *,
        update: bool = False,
    ) -> None:
        self._record("register", account, family, service, registration.url)
        self.updates.append(update)
        with self.lock:
            self.state.setdefault(account, {})[service] = replace(registration, family=family)

    def deregister(self, account: str, family: FamilySpec, service: str) -> None:
        self._record("deregister", account, family, service, None)
        with self.lock:
            self.state.get(account, {}).pop(service, None)


def basis(state: CurrentState) -> Basis:
    """What a plan from ``state`` read: every family of every account in it."""
    return Basis(state, {account: frozenset(all_families()) for account in state.accounts})


def apply(plan: Plan, writer: FakeWriter, state: CurrentState, **options: Any) -> ApplyReport:
    options.setdefault("parallelism", 4)
    return apply_plan(plan, writer, basis=basis(state), **options)


def test_each_action_maps_to_the_right_call() -> None:
    state = current({"a": {"QoS": reg(U + "-old"), "AlertService": reg(U)}})
    plan = make_plan(
        desired({"a": {"DeviceUsage": reg(U), "Fota": reg(U + "2"), "QoS": reg(U)}}), state
    )
    writer = FakeWriter(state=state)
    report = apply(plan, writer, state, parallelism=2)
    assert sorted(writer.calls) == sorted(
        [
            ("deregister", "a", M2M, "AlertService", None),
            ("register", "a", M2M, "DeviceUsage", U),
            ("register", "a", FOTA, "Fota", U + "2"),
            ("register", "a", M2M, "QoS", U),
        ]
    )
    assert not report.failures
    assert report.summary_line() == "2 created, 1 updated, 1 deleted"
    assert sorted(writer.updates) == [False, False, True]  # the update is sent as one
    report.raise_for_failures()


def test_continues_past_failures_and_names_every_one() -> None:
    state = current({"a": {}, "b": {}})
    plan = make_plan(
        desired({"a": {"DeviceUsage": reg(U), "QoS": reg(U)}, "b": {"DeviceUsage": reg(U)}}),
        state,
    )
    writer = FakeWriter(
        {
            ("a", "DeviceUsage"): ApiError("POST", "/api/m2m/v1/callbacks/a", 400, "INVALID", "no"),
            ("b", "DeviceUsage"): ApiError("POST", "/api/m2m/v1/callbacks/b", 503),
        }
    )
    seen: list[str] = []
    report = apply(plan, writer, state, on_result=lambda r: seen.append(str(r)))
    assert len(writer.calls) == 3
    assert len(report.failures) == 2 and len(seen) == 3
    with pytest.raises(ApplyError) as info:
        report.raise_for_failures()
    lines = info.value.lines()
    assert lines[-1] == "apply failed: 2 of 3 changes failed" and len(lines) == 3
    assert any("a/DeviceUsage" in ln and "INVALID" in ln for ln in lines)
    assert any("b/DeviceUsage" in ln and "503" in ln for ln in lines)
    assert "a/QoS: created" in seen


def test_auth_refusal_stops_further_attempts() -> None:
    state = current({"a": {}})
    plan = make_plan(desired({"a": {"DeviceUsage": reg(U), "QoS": reg(U)}}), state)
    writer = FakeWriter({("a", "DeviceUsage"): AuthError("POST", "/login", 400, "BAD", "refused")})
    report = apply(plan, writer, state, parallelism=1)
    assert len(writer.calls) == 1
    assert [r.ok for r in report.results] == [False, False]
    assert "not attempted" in (report.results[1].error or "")


def test_a_stopped_run_starts_no_further_change() -> None:
    """The client stopped the run (failures in a row, the deadline): no other change is
    sent, in this account or any other."""
    services = ("DeviceUsage", "QoS", "StateService")
    state = current({"a": {}, "b": {}})
    plan = make_plan(
        desired({"a": {s: reg(U) for s in services}, "b": {s: reg(U) for s in services}}),
        state,
    )
    stopped = RunStopped("stopped: 3 requests in a row failed; 9 requests sent in this run")
    writer = FakeWriter({("a", "DeviceUsage"): stopped}, state=state)
    report = apply(plan, writer, state, parallelism=1)
    assert len(writer.calls) == 1
    assert len(report.failures) == 6
    assert report.results[0].error == str(stopped)
    assert all("not attempted" in (r.error or "") for r in report.results[1:])


def test_empty_plan_makes_no_calls() -> None:
    writer = FakeWriter()
    state = current({"a": {}})
    report = apply(make_plan(desired({"a": {}}), state), writer, state)
    assert writer.calls == [] and writer.reads == [] and report.results == ()


def test_stop_starts_nothing_new() -> None:
    services = ("DeviceUsage", "QoS", "StateService")
    state = current({"a": {}})
    plan = make_plan(desired({"a": {s: reg(U) for s in services}}), state)
    stop = threading.Event()

    class Stopping(FakeWriter):
        def register(
            self,
            account: str,
            family: FamilySpec,
            service: str,
            registration: Registration,
            *,
            update: bool = False,
        ) -> None:
            super().register(account, family, service, registration, update=update)
            stop.set()  # as Ctrl-C does, while this change is on the wire

    writer = Stopping()
    report = apply(plan, writer, state, parallelism=1, stop=stop)
    assert len(writer.calls) == 1
    assert [str(r) for r in report.results] == ["a/DeviceUsage: created"]


# -- lost updates: an account changed by someone else is not written to -----------------

A, B = "0252012345-00001", "0252012345-00002"
OTHER = "https://elsewhere.example.net/hook"
STATE = current({A: {"QoS": reg(U + "-old"), "Fota": reg(U + "/f")}, B: {}})
WANT = desired(
    {A: {"QoS": reg(U), "DeviceUsage": reg(U), "Fota": reg(U + "/f")}, B: {"DeviceUsage": reg(U)}}
)


def someone_else(
    writer: FakeWriter, account: str, service: str, value: Registration | None
) -> None:
    """Another run, a person or another tool changes ``account`` behind this run's back."""
    with writer.lock:
        if value is None:
            writer.state[account].pop(service)
        else:
            family = FOTA if service == "Fota" else M2M
            writer.state.setdefault(account, {})[service] = replace(value, family=family)


def writes_to(writer: FakeWriter, account: str) -> list[tuple[str, str]]:
    return [(verb, service) for verb, acct, _, service, _ in writer.calls if acct == account]


@pytest.mark.parametrize(
    ("service", "value"),
    [
        ("QoS", reg(OTHER)),  # URL changed
        ("QoS", reg(U + "-old", "someone")),  # username added
        ("QoS", reg(U + "-old", password="a-secret")),  # a password set
        ("QoS", None),  # deregistered
        ("AlertService", reg(OTHER)),  # registered
        ("DeviceUsage", reg(U)),  # registered, exactly as planned
        ("Fota", reg(OTHER)),  # the other family
    ],
)
def test_account_changed_since_the_plan_gets_no_write(
    service: str, value: Registration | None
) -> None:
    plan = make_plan(WANT, STATE)
    writer = FakeWriter(state=STATE)
    someone_else(writer, A, service, value)
    halted: list[str] = []
    report = apply(plan, writer, STATE, on_halt=lambda h: halted.append(str(h)))
    assert writes_to(writer, A) == []
    assert writes_to(writer, B) == [("register", "DeviceUsage")]  # the others proceed
    assert (A, M2M) in writer.reads and (A, FOTA) in writer.reads
    line = f"{A}: changed by someone else since the plan; nothing was changed for it"
    assert halted == [line]
    assert not report.ok and report.summary_line() == "1 created, 0 updated, 0 deleted"
    with pytest.raises(AccountsHaltedError) as info:
        report.raise_for_failures()
    assert info.value.lines() == [line, "apply failed: 1 account not changed as planned"]
    assert "a-secret" not in " ".join(info.value.lines())


def test_unchanged_account_is_read_once_more_and_written() -> None:
    plan = make_plan(WANT, STATE)
    writer = FakeWriter(state=STATE)
    report = apply(plan, writer, STATE)
    assert report.ok and not report.halts
    assert sorted(writes_to(writer, A)) == [("register", "DeviceUsage"), ("register", "QoS")]
    report.raise_for_failures()


def test_a_changed_password_value_cannot_be_seen_and_is_not_a_conflict() -> None:
    state = current({A: {"QoS": reg(U + "-old", password="one")}})
    plan = make_plan(desired({A: {"QoS": reg(U, password="one")}}), state)
    writer = FakeWriter(state=state)
    someone_else(writer, A, "QoS", reg(U + "-old", password="two"))  # set either way
    assert apply(plan, writer, state).ok
    assert writes_to(writer, A) == [("register", "QoS")]


def test_families_the_plan_did_not_read_are_not_compared() -> None:
    state = current({A: {}})
    plan = make_plan(desired({A: {"QoS": reg(U)}}, prune=False), state)
    writer = FakeWriter(state=state)
    someone_else(writer, A, "Fota", reg(OTHER))  # not ours: prune is false, FOTA not read
    report = apply_plan(plan, writer, basis=Basis(state, {A: frozenset({M2M})}), parallelism=1)
    assert report.ok
    assert writer.reads[0] == (A, M2M) and (A, FOTA) not in writer.reads


def test_an_account_the_plan_did_not_read_is_not_written() -> None:
    plan = make_plan(WANT, STATE)
    writer = FakeWriter(state=STATE)
    report = apply_plan(plan, writer, basis=Basis(STATE, {B: frozenset({M2M})}), parallelism=2)
    assert writes_to(writer, A) == [] and [str(h) for h in report.halts] == [
        f"{A}: was not read for this plan; nothing was changed for it"
    ]


def test_an_account_that_cannot_be_read_again_is_not_written() -> None:
    class Unreadable(FakeWriter):
        def listing(self, account: str, family: FamilySpec) -> dict[str, Registration]:
            if account == A:
                raise ApiError("GET", f"/api/m2m/v1/callbacks/{account}", 503)
            return super().listing(account, family)

    plan = make_plan(WANT, STATE)
    writer = Unreadable(state=STATE)
    report = apply(plan, writer, STATE)
    assert writes_to(writer, A) == [] and writes_to(writer, B) == [("register", "DeviceUsage")]
    assert [str(h) for h in report.halts] == [
        f"{A}: could not be read again before writing "
        f"(GET /api/m2m/v1/callbacks/{A}: HTTP 503); nothing was changed for it"
    ]


def test_a_refused_login_while_reading_again_stops_everything() -> None:
    class Refusing(FakeWriter):
        def listing(self, account: str, family: FamilySpec) -> dict[str, Registration]:
            raise AuthError("POST", "/api/m2m/v1/session/login", 400, "BAD", "refused")

    plan = make_plan(WANT, STATE)
    writer = Refusing(state=STATE)
    report = apply(plan, writer, STATE, parallelism=1)
    assert writer.calls == []
    assert [h.account for h in report.halts] == [A]
    assert [str(r) for r in report.results] == [
        f"{B}/DeviceUsage: create failed: not attempted: an earlier failure stopped the run"
    ]


# -- lost updates: someone else writing while this run writes ---------------------------


class Racing(FakeWriter):
    """Another run writes ``service`` right after this run's ``after``-th write."""

    def __init__(self, state: CurrentState, after: int, service: str, value: Registration) -> None:
        super().__init__(state=state)
        self.after, self.service, self.value = after, service, value
        self.writes = 0

    def register(
        self,
        account: str,
        family: FamilySpec,
        service: str,
        registration: Registration,
        *,
        update: bool = False,
    ) -> None:
        super().register(account, family, service, registration, update=update)
        self.writes += 1
        if self.writes == self.after:
            someone_else(self, account, self.service, self.value)


def test_a_first_write_overwritten_by_another_run_stops_the_account() -> None:
    state = current({A: {}})
    services = ("DeviceUsage", "QoS", "StateService")
    plan = make_plan(desired({A: {s: reg(U) for s in services}}), state)
    writer = Racing(state, after=1, service="DeviceUsage", value=reg(OTHER))
    report = apply(plan, writer, state)
    assert writes_to(writer, A) == [("register", "DeviceUsage")]  # no second write
    assert [str(h) for h in report.halts] == [
        f"{A}: changed by someone else while this apply was writing to it; 1 of 3 changes "
        "were made, the rest were not attempted; run 'tscallbacks plan' to see where it stands"
    ]
    with pytest.raises(AccountsHaltedError):
        report.raise_for_failures()


def test_the_look_follows_the_first_registration_not_a_deregistration() -> None:
    # Two runs removing the same stray registration cannot tell who removed it; the
    # first registration they write can.
    state = current({A: {"AlertService": reg(OTHER)}})
    plan = make_plan(desired({A: {"DeviceUsage": reg(U), "QoS": reg(U)}}), state)
    assert [c.action.value for c in plan.changes] == ["delete", "create", "create"]
    writer = Racing(state, after=1, service="DeviceUsage", value=reg(OTHER))
    report = apply(plan, writer, state)
    assert writes_to(writer, A) == [("deregister", "AlertService"), ("register", "DeviceUsage")]
    assert [str(h) for h in report.halts] == [
        f"{A}: changed by someone else while this apply was writing to it; 2 of 3 changes "
        "were made, the rest were not attempted; run 'tscallbacks plan' to see where it stands"
    ]


def test_a_change_during_the_last_writes_is_never_reported_as_applied() -> None:
    state = current({A: {}})
    plan = make_plan(desired({A: {"DeviceUsage": reg(U), "QoS": reg(U)}}), state)
    writer = Racing(state, after=2, service="DeviceUsage", value=reg(OTHER))
    report = apply(plan, writer, state)
    assert len(writes_to(writer, A)) == 2
    assert [str(h) for h in report.halts] == [
        f"{A}: changed by someone else while this apply was writing to it; its 2 changes were "
        "made; run 'tscallbacks plan' to see where it stands"
    ]
    assert not report.ok


def test_the_look_after_the_first_write_waits_for_a_racing_write_to_land() -> None:
    class LateRacer(FakeWriter):
        """The other run's write lands 50 ms after this run's first write."""

        racer: threading.Timer | None = None

        def register(
            self,
            account: str,
            family: FamilySpec,
            service: str,
            registration: Registration,
            *,
            update: bool = False,
        ) -> None:
            super().register(account, family, service, registration, update=update)
            if self.racer is None:
                self.racer = threading.Timer(0.05, someone_else, (self, A, service, reg(OTHER)))
                self.racer.start()

    state = current({A: {}})
    plan = make_plan(desired({A: {"DeviceUsage": reg(U), "QoS": reg(U)}}), state)
    writer = LateRacer(state=state)
    ticks = iter(
        [0.0, 0.5]
    )  # the re-read and the first write took half a second: so does the pause
    report = apply(plan, writer, state, clock=lambda: next(ticks))
    assert writer.racer is not None
    writer.racer.join()
    assert writes_to(writer, A) == [("register", "DeviceUsage")]
    assert [h.account for h in report.halts] == [A]


def test_own_writes_are_not_mistaken_for_someone_elses() -> None:
    state = current({A: {"QoS": reg(U + "-old")}, B: {"QoS": reg(U)}})
    want = desired(
        {
            A: {"DeviceUsage": reg(U, "user", "pw-1"), "Fota": reg(U + "/f")},
            B: {"QoS": reg(U, password="pw-2")},
        }
    )
    plan = make_plan(want, state)
    writer = FakeWriter(state=state)
    report = apply(plan, writer, state)
    assert report.ok, [str(h) for h in report.halts]
    assert len(writer.calls) == 4  # create, create, delete; an update


def test_a_listing_without_passwords_is_not_a_conflict() -> None:
    class NoPasswords(FakeWriter):
        def listing(self, account: str, family: FamilySpec) -> dict[str, Registration]:
            return {
                s: replace(r, password=None, password_known=False)
                for s, r in super().listing(account, family).items()
            }

    state = current({A: {"QoS": reg(U + "-old", known=False)}})
    plan = make_plan(desired({A: {"QoS": reg(U, password="pw"), "DeviceUsage": reg(U)}}), state)
    writer = NoPasswords(state=state)
    assert apply(plan, writer, state).ok


def test_a_failed_write_that_took_effect_is_not_a_conflict() -> None:
    class FailsAfterEffect(FakeWriter):
        def register(
            self,
            account: str,
            family: FamilySpec,
            service: str,
            registration: Registration,
            *,
            update: bool = False,
        ) -> None:
            super().register(account, family, service, registration, update=update)
            if service == "DeviceUsage":
                raise ApiError("POST", f"/api/m2m/v1/callbacks/{account}", 504)

    state = current({A: {}})
    plan = make_plan(desired({A: {"DeviceUsage": reg(U), "QoS": reg(U)}}), state)
    writer = FailsAfterEffect(state=state)
    report = apply(plan, writer, state)
    assert not report.halts and len(report.failures) == 1
    assert writes_to(writer, A) == [("register", "DeviceUsage"), ("register", "QoS")]
    with pytest.raises(ApplyError, match="1 of 2 changes failed"):
        report.raise_for_failures()


def test_failures_and_accounts_left_alone_are_all_named() -> None:
    plan = make_plan(WANT, STATE)
    failing: dict[tuple[str, str], Exception] = {
        (B, "DeviceUsage"): ApiError("POST", f"/api/m2m/v1/callbacks/{B}", 503)
    }
    writer = FakeWriter(failing, state=STATE)
    someone_else(writer, A, "QoS", None)
    report = apply(plan, writer, STATE)
    with pytest.raises(AccountsHaltedError) as info:
        report.raise_for_failures()
    assert info.value.lines() == [
        f"{B}/DeviceUsage: create failed: POST /api/m2m/v1/callbacks/{B}: HTTP 503",
        f"{A}: changed by someone else since the plan; nothing was changed for it",
        "apply failed: 1 of 1 changes failed; 1 account not changed as planned",
    ]
