"""Seeded fault schedules: apply converges, writes only what is needed, logs in sparingly.

For each seed a small desired and remote state and a schedule of faults are drawn: 429s
(Retry-After: 0), 5xx answers and dropped connections injected before the client's Nth
request, sessions expired mid-run, and writes to one account failing for the whole first
run. Then one run of plan + apply (what ``tscallbacks apply --auto-approve`` does, with the
same client, planner and executor, minus the waits between retries) and, if the state
is not yet right, a second run with at most one light fault. The properties:

- converged within two applies: the simulator holds exactly what the configuration asks
  for (computed by ``tests.reconcile_support``, not by the planner), and a fault-free
  plan shows no changes;
- no unneeded write: every write request is part of a needed change, and none succeeds
  more often than needed (a retry of a failed attempt is fine);
- at most 3 login requests (``POST /api/m2m/v1/session/login``) per run.

Half the seeds run with one request at a time, so each fault lands on the same request
every time; the other half with four threads, where the faults land wherever the threads
are: the properties must hold either way.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.cli.connection import compute_plan
from reconciler.config import load_config
from reconciler.core import catalog
from reconciler.core.errors import TscError
from reconciler.core.families import DEFAULT_MANAGED, all_families
from reconciler.core.model import DesiredState
from reconciler.engine.executor import apply_plan
from reconciler.engine.guard import Basis
from reconciler.engine.observe import read_current
from reconciler.simulator import FaultSettings, RequestRecord, Simulator, SimulatorConfig
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.options import ClientOptions
from tests.reconcile_support import (
    ACCOUNTS,
    Declared,
    Desired,
    Reg,
    Remote,
    config_text,
    expected_state,
    logins,
    needed,
    reset,
    simulator_state,
    takes_credentials,
    unneeded_writes,
)

SEEDS = range(100)
MAX_LOGINS = 3
CREDENTIALS = Credentials.for_simulator({})
# The version-1 families' services: the oracle here says prune covers every remote
# registration, which holds for the families an account reads by default (m2m, fota).
# The newer families, read through manage:, are tested in tests/test_e2e_families.py.
SERVICES = tuple(s for s in catalog.services() if catalog.family_of(s) in DEFAULT_MANAGED)
FAULTS = ("rate_limit", "server_error", "drop", "expire")


@dataclass(frozen=True)
class Event:
    """A fault armed just before the client's ``at``-th request of a run (1-based)."""

    at: int
    kind: str  # one of FAULTS
    count: int = 1
    status: int = 503


@dataclass(frozen=True)
class Schedule:
    seed: int
    desired: Desired
    remote: Remote
    fail_writes: Mapping[str, int]  # for the first run only
    first: tuple[Event, ...]
    second: tuple[Event, ...]
    parallelism: int

    def describe(self) -> str:
        return (
            f"seed {self.seed}: parallelism={self.parallelism} fail_writes="
            f"{dict(self.fail_writes)} first={list(self.first)} second={list(self.second)}"
        )


# -- drawing a schedule from a seed -----------------------------------------------------------


def _reg(rng: random.Random, service: str) -> Reg:
    username_ok, password_ok = takes_credentials(service)
    n = rng.randrange(1000)
    return Reg(
        url=f"https://hooks{n % 7}.example.com/{service.lower()}/{n}",
        username=f"user{n % 3}" if username_ok and rng.random() < 0.4 else None,
        password=f"secret-{n % 5}" if password_ok and rng.random() < 0.3 else None,
    )


def draw_schedule(seed: int) -> Schedule:
    rng = random.Random(seed)
    remote: dict[str, dict[str, Reg]] = {}
    desired: dict[str, Declared] = {}
    for account in rng.sample(ACCOUNTS, rng.randint(1, 3)):
        have = {s: _reg(rng, s) for s in rng.sample(SERVICES, rng.randint(0, 3))}
        remote[account] = have
        callbacks: dict[str, Reg] = {}
        for service, reg in have.items():
            how = rng.choice(["same", "changed", "absent"])
            if how == "same":
                callbacks[service] = reg
            elif how == "changed":
                callbacks[service] = _reg(rng, service)
        for service in rng.sample(SERVICES, rng.randint(0, 2)):
            callbacks.setdefault(service, _reg(rng, service))
        desired[account] = Declared(prune=rng.random() < 0.7, callbacks=callbacks)

    want = needed(desired, remote)
    written = sorted({a for a, _ in want.registers} | {a for a, _ in want.deletes})
    fail_writes: dict[str, int] = {}
    if written and rng.random() < 0.5:
        fail_writes[rng.choice(written)] = rng.choice([500, 503, 400, 409])
    # About how many requests a run makes: token, login, listings, writes, logout.
    horizon = 3 + 2 * len(desired) + want.total

    def event(kinds: Sequence[str], most: int) -> Event:
        kind = rng.choice(kinds)
        return Event(
            at=rng.randint(1, horizon),
            kind=kind,
            count=1 if kind == "expire" else rng.randint(1, most),
            status=rng.choice([500, 502, 503, 504]),
        )

    first = tuple(event(FAULTS, 2) for _ in range(rng.randint(1, 4)))
    second = tuple(event(["rate_limit", "expire"], 1) for _ in range(rng.random() < 0.3))
    return Schedule(seed, desired, remote, fail_writes, first, second, 1 + 3 * (seed % 2))


# -- running a schedule ----------------------------------------------------------------------


class ScheduledSession(requests.Session):
    """A requests session that arms the schedule's faults as the client's requests go out."""

    def __init__(self, sim: Simulator, events: Sequence[Event]) -> None:
        super().__init__()
        self._sim = sim
        self._pending = sorted(events, key=lambda e: e.at)
        self._sent = 0
        self._lock = threading.Lock()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._sent += 1
            while self._pending and self._pending[0].at <= self._sent:
                self._arm(self._pending.pop(0))
        return super().request(method, url, *args, **kwargs)

    def _arm(self, event: Event) -> None:
        if event.kind == "expire":
            self._sim.expire_sessions()
            return
        s = self._sim.fault_settings()
        if event.kind == "rate_limit":
            s = replace(s, rate_limit_next=s.rate_limit_next + event.count)
        elif event.kind == "server_error":
            s = replace(
                s,
                server_error_next=s.server_error_next + event.count,
                server_error_status=event.status,
            )
        else:
            s = replace(s, drop_next=s.drop_next + event.count)
        self._sim.set_faults(s)


@dataclass(frozen=True)
class Run:
    records: tuple[RequestRecord, ...]
    outcome: str  # "ok", or what failed


def _no_sleep(seconds: float) -> None:
    """Retry waits are the policy's business (tested on their own); here they cost time."""


def run_apply(
    sim: Simulator,
    desired: DesiredState,
    events: Sequence[Event],
    *,
    parallelism: int,
    fail_writes: Mapping[str, int] | None = None,
) -> Run:
    """One ``apply --auto-approve``: a fresh client (so a fresh login), plan, apply."""
    sim.set_faults(FaultSettings(retry_after=0, fail_writes=fail_writes or {}))
    start = len(sim.requests())
    session = ScheduledSession(sim, events)
    outcome = "ok"
    try:
        with ThingSpaceClient(
            sim.base_url,
            CREDENTIALS,
            options=ClientOptions(parallelism=parallelism),
            session=session,
            sleep=_no_sleep,
        ) as client:
            planned = compute_plan(client, desired, parallelism=parallelism)
            basis = Basis(planned.current, planned.wanted)
            report = apply_plan(planned.plan, client, basis=basis, parallelism=parallelism)
            if report.failures:
                outcome = f"{len(report.failures)} change(s) failed: {report.failures[0]}"
            elif report.halts:
                outcome = f"{len(report.halts)} account(s) left alone: {report.halts[0]}"
    except TscError as exc:
        outcome = f"run failed: {exc}"
    finally:
        session.close()
        sim.set_faults(FaultSettings())
    return Run(tuple(sim.requests()[start:]), outcome)


def plans_no_changes(sim: Simulator, desired: DesiredState) -> bool:
    with ThingSpaceClient(sim.base_url, CREDENTIALS) as client:
        return not compute_plan(client, desired, parallelism=4).plan.has_changes


# -- the test --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(credentials=CREDENTIALS)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("schedules")


@pytest.mark.parametrize("seed", SEEDS)
def test_apply_under_a_fault_schedule(seed: int, sim: Simulator, workdir: Path) -> None:
    schedule = draw_schedule(seed)
    reset(sim, schedule.remote)
    text, env = config_text(schedule.desired)
    config = workdir / f"seed{seed}.yaml"
    config.write_text(text, "utf-8")
    desired = load_config(str(config), env=env, require_env=True).desired
    want = needed(schedule.desired, schedule.remote)
    goal = expected_state(schedule.desired, schedule.remote)

    parallelism = schedule.parallelism
    runs = [
        run_apply(
            sim, desired, schedule.first, parallelism=parallelism, fail_writes=schedule.fail_writes
        )
    ]
    if simulator_state(sim) != goal:
        runs.append(run_apply(sim, desired, schedule.second, parallelism=parallelism))
    story = f"{schedule.describe()}; runs: {[r.outcome for r in runs]}"

    assert simulator_state(sim) == goal, f"not converged after two applies; {story}"
    assert plans_no_changes(sim, desired), story
    records = [record for run in runs for record in run.records]
    assert unneeded_writes(records, want) == [], story
    for number, run in enumerate(runs, 1):
        assert logins(run.records) <= MAX_LOGINS, f"run {number}: {logins(run.records)}; {story}"


def test_the_schedules_cover_every_fault() -> None:
    """The seeds are not vacuous: every fault kind, failing writes, changes of every kind,
    second runs and both parallelisms all occur."""
    schedules = [draw_schedule(seed) for seed in SEEDS]
    kinds = {e.kind for s in schedules for e in s.first}
    assert kinds == set(FAULTS)
    assert {s.parallelism for s in schedules} == {1, 4}
    assert sum(1 for s in schedules if s.fail_writes) >= len(SEEDS) // 4
    assert sum(1 for s in schedules if s.second) >= len(SEEDS) // 10
    assert sum(1 for s in schedules if sum(e.kind == "expire" for e in s.first) >= 2) >= 3
    wants = [needed(s.desired, s.remote) for s in schedules]
    assert sum(1 for w in wants if w.deletes) >= len(SEEDS) // 4
    assert sum(1 for w in wants if w.registers) >= len(SEEDS) // 2
    assert draw_schedule(7) == draw_schedule(7)


def test_the_write_check_catches_a_repeated_write() -> None:
    """The oracle itself: a second successful write of one change is flagged; a failed
    attempt followed by a success is a retry, not an extra write."""
    account, service = ACCOUNTS[0], "QoS"
    want = needed(
        {account: Declared(prune=True, callbacks={service: Reg("https://a.example.com/")})},
        {account: {"DeviceUsage": Reg("https://b.example.com/")}},
    )
    post = RequestRecord("POST", f"/api/m2m/v1/callbacks/{account}", 200, account)
    retried = RequestRecord("POST", post.path, 503, account)
    delete = RequestRecord(
        "DELETE", f"/api/m2m/v1/callbacks/{account}/name/DeviceUsage", 200, account
    )
    stray = RequestRecord("DELETE", f"/api/m2m/v1/callbacks/{account}/name/QoS", 200, account)
    assert unneeded_writes([retried, post, delete], want) == []
    assert unneeded_writes([post, post], want) != []
    assert unneeded_writes([delete, delete], want) != []
    assert unneeded_writes([stray], want) != []


def test_parallel_calls_share_one_relogin(sim: Simulator) -> None:
    """Sixteen listings on eight threads meet one expired session: one re-login serves
    them all (single flight), every time."""
    wanted = {f"acct{i}": frozenset(all_families()) for i in range(8)}
    for _ in range(20):
        reset(sim, {})
        session = ScheduledSession(sim, [Event(at=4, kind="expire")])
        options = ClientOptions(parallelism=8)
        with ThingSpaceClient(
            sim.base_url, CREDENTIALS, options=options, session=session, sleep=_no_sleep
        ) as client:
            current = read_current(client, wanted, parallelism=8)
        session.close()
        assert set(current.accounts) == set(wanted)
        assert logins(sim.requests()) == 2
