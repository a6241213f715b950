"""The executor's scheduling: an account's changes after its checked first registration
go out side by side on free workers, a family with one registration per account keeps
its order, and the guard's pause holds no worker."""

from __future__ import annotations

import threading
from dataclasses import replace

from reconciler.core.families import M2M, FamilySpec
from reconciler.core.model import Registration
from reconciler.engine.executor import _chains, apply_plan
from reconciler.engine.planner import make_plan
from tests.helpers import current, desired, reg
from tests.test_executor import FakeWriter, basis

U = "https://hooks.example.com/x"
A, B = "0252012345-00001", "0252012345-00002"
SERVICES = ("AlertService", "CarrierService", "DeviceService", "DeviceUsage", "QoS", "StateService")
ONE_PER_ACCOUNT = FamilySpec(
    name="single", title="One per account", base="/api/single/v1", service_field=None
)


class Overlapping(FakeWriter):
    """Records the most writes in flight at once, per account; each write waits until
    another write of the same account is in flight or a short while has passed."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.in_flight: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.cond = threading.Condition()

    def register(
        self,
        account: str,
        family: FamilySpec,
        service: str,
        registration: Registration,
        *,
        update: bool = False,
    ) -> None:
        with self.cond:
            self.in_flight[account] = self.in_flight.get(account, 0) + 1
            self.most[account] = max(self.most.get(account, 0), self.in_flight[account])
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.in_flight[account] > 1, timeout=0.5)
        super().register(account, family, service, registration, update=update)
        with self.cond:
            self.in_flight[account] -= 1


def test_an_accounts_writes_after_the_first_go_out_side_by_side() -> None:
    state = current({A: {}})
    plan = make_plan(desired({A: {s: reg(U) for s in SERVICES}}), state)
    writer = Overlapping(state=state)
    report = apply_plan(plan, writer, basis=basis(state), parallelism=4)
    assert report.ok, [str(h) for h in report.halts]
    assert len(writer.calls) == len(SERVICES)
    assert writer.most[A] > 1  # one worker alone would never have two in flight
    # The first registration went alone, before the others: the guard's look follows it.
    assert writer.calls[0][3] == SERVICES[0]


def test_one_worker_still_makes_every_change_in_plan_order() -> None:
    state = current({A: {}, B: {}})
    plan = make_plan(desired({A: {s: reg(U) for s in SERVICES}, B: {"QoS": reg(U)}}), state)
    writer = FakeWriter(state=state)
    report = apply_plan(plan, writer, basis=basis(state), parallelism=1)
    assert report.ok
    assert [(c[1], c[3]) for c in writer.calls if c[1] == A] == [(A, s) for s in SERVICES]
    assert [r.change.key for r in report.results] == [c.key for c in plan.changes]


def test_a_family_with_one_registration_per_account_keeps_its_order() -> None:
    state = current({A: {}})
    plan = make_plan(desired({A: {s: reg(U) for s in SERVICES}}), state)
    changes = list(plan.changes)
    # Two changes of a one-per-account family (say, its delete then its create).
    changes[1] = replace(changes[1], family=ONE_PER_ACCOUNT)
    changes[4] = replace(changes[4], family=ONE_PER_ACCOUNT)
    chains = _chains(changes)
    assert [changes[1], changes[4]] in chains
    assert sorted(len(c) for c in chains) == [1, 1, 1, 1, 2]
    assert sorted(id(c) for chain in chains for c in chain) == sorted(map(id, changes))
    assert all(c.family is M2M for chain in chains if len(chain) == 1 for c in chain)
