from __future__ import annotations

import threading

import pytest

from reconciler.core.errors import ApiError, ApplyError, AuthError
from reconciler.core.families import FOTA, M2M, FamilySpec
from reconciler.core.model import Registration
from reconciler.engine.executor import apply_plan
from reconciler.engine.planner import make_plan
from reconciler.thingspace.guard import RunStopped
from tests.helpers import current, desired, reg

U = "https://hooks.example.com/x"


class FakeWriter:
    def __init__(self, fail: dict[tuple[str, str], Exception] | None = None) -> None:
        self.calls: list[tuple[str, str, FamilySpec, str, str | None]] = []
        self.updates: list[bool] = []
        self.fail = fail or {}
        self.lock = threading.Lock()

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

    def deregister(self, account: str, family: FamilySpec, service: str) -> None:
        self._record("deregister", account, family, service, None)


def test_each_action_maps_to_the_right_call() -> None:
    plan = make_plan(
        desired({"a": {"DeviceUsage": reg(U), "Fota": reg(U + "2"), "QoS": reg(U)}}),
        current({"a": {"QoS": reg(U + "-old"), "AlertService": reg(U)}}),
    )
    writer = FakeWriter()
    report = apply_plan(plan, writer, parallelism=2)
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
    plan = make_plan(
        desired({"a": {"DeviceUsage": reg(U), "QoS": reg(U)}, "b": {"DeviceUsage": reg(U)}}),
        current({}),
    )
    writer = FakeWriter(
        {
            ("a", "DeviceUsage"): ApiError("POST", "/api/m2m/v1/callbacks/a", 400, "INVALID", "no"),
            ("b", "DeviceUsage"): ApiError("POST", "/api/m2m/v1/callbacks/b", 503),
        }
    )
    seen: list[str] = []
    report = apply_plan(plan, writer, parallelism=4, on_result=lambda r: seen.append(str(r)))
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
    plan = make_plan(desired({"a": {"DeviceUsage": reg(U), "QoS": reg(U)}}), current({}))
    writer = FakeWriter({("a", "DeviceUsage"): AuthError("POST", "/login", 400, "BAD", "refused")})
    report = apply_plan(plan, writer, parallelism=1)
    assert len(writer.calls) == 1
    assert [r.ok for r in report.results] == [False, False]
    assert "not attempted" in (report.results[1].error or "")


def test_a_stopped_run_starts_no_further_change() -> None:
    """The client stopped the run (failures in a row, the deadline): no other change is
    sent, in this account or any other."""
    services = ("DeviceUsage", "QoS", "StateService")
    plan = make_plan(
        desired({"a": {s: reg(U) for s in services}, "b": {s: reg(U) for s in services}}),
        current({}),
    )
    stopped = RunStopped("stopped: 3 requests in a row failed; 9 requests sent in this run")
    writer = FakeWriter({("a", "DeviceUsage"): stopped})
    report = apply_plan(plan, writer, parallelism=1)
    assert len(writer.calls) == 1
    assert len(report.failures) == 6
    assert report.results[0].error == str(stopped)
    assert all("not attempted" in (r.error or "") for r in report.results[1:])


def test_empty_plan_makes_no_calls() -> None:
    writer = FakeWriter()
    report = apply_plan(make_plan(desired({"a": {}}), current({})), writer, parallelism=4)
    assert writer.calls == [] and report.results == ()


def test_stop_starts_nothing_new() -> None:
    services = ("DeviceUsage", "QoS", "StateService")
    plan = make_plan(desired({"a": {s: reg(U) for s in services}}), current({}))
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
    report = apply_plan(plan, writer, parallelism=1, stop=stop)
    assert len(writer.calls) == 1
    assert [str(r) for r in report.results] == ["a/DeviceUsage: created"]
