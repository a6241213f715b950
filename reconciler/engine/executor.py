"""The apply executor: makes a plan's changes through the client, one result per change.

Accounts run in parallel, and so do an account's changes once its first registration
has been checked (below), except where the API needs an order; at most ``parallelism``
requests at once. A failed change does not stop the others; the report names every
failure. An update is a re-registration or a PUT, as the family does it (the client
reads that from its table).

Lost updates (:mod:`reconciler.engine.guard`): before the first write to an account its
listings are read again and compared with what the plan was computed from; an account
changed by someone else in between gets no write at all. They are read once more after
the first registration written (after a pause, so that another run racing this one has
landed its own) and after the last write; an account that then holds anything but what
this run wrote gets no further write and is never reported as applied. The report names
every such account.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from reconciler.core.errors import ApplyError, AuthError, TscError
from reconciler.core.families import FamilySpec, all_families
from reconciler.core.model import Registration
from reconciler.engine.guard import AccountGuard, Basis, Reader
from reconciler.engine.plan import Action, Change, Plan
from reconciler.engine.shared_secrets import SecretOutcome, SecretsDir, SecretStatus, deliver
from reconciler.thingspace.guard import RunStopped
from reconciler.thingspace.wireformat import Issued

_DONE = {Action.CREATE: "created", Action.UPDATE: "updated", Action.DELETE: "deleted"}


class Writer(Protocol):
    """The part of the API client the executor needs."""

    def register(
        self,
        account: str,
        family: FamilySpec,
        service: str,
        registration: Registration,
        *,
        update: bool = False,
    ) -> Issued | None: ...

    def deregister(self, account: str, family: FamilySpec, service: str) -> None: ...


class Client(Reader, Writer, Protocol):
    """Reads (to check an account before writing to it) and writes."""


@dataclass(frozen=True)
class ChangeResult:
    change: Change
    error: str | None = None
    auth_refused: bool = False
    attempted: bool = True  # False: skipped after a failure that stopped the run
    secret: SecretOutcome | None = None  # a registration answered with a shared secret

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def secret_lost(self) -> bool:
        return self.secret is not None and self.secret.status is SecretStatus.UNDELIVERED

    def __str__(self) -> str:
        if self.ok:
            done = f"{self.change.key}: {_DONE[self.change.action]}"
            if self.secret is None:
                return done
            return f"{done}; {self.secret.describe(self.change.family.shared_secret_header)}"
        return f"{self.change.key}: {self.change.action.value} failed: {self.error}"


@dataclass(frozen=True)
class AccountHalt:
    """An account whose planned changes were not (all) made, and why: one line."""

    account: str
    reason: str

    def __str__(self) -> str:
        return f"{self.account}: {self.reason}"


# The pause before looking again after an account's first registration: as long as the
# re-read and the writes so far took (another run's take about as long), capped.
MAX_SETTLE_SECONDS = 10.0
_NOTHING = "nothing was changed for it"
CHANGED_BEFORE = f"changed by someone else since the plan; {_NOTHING}"
_CHANGED_DURING = "changed by someone else while this apply was writing to it"
_REPLAN = "run 'tscallbacks plan' to see where it stands"


class AccountsHaltedError(TscError):
    """Some accounts were left alone (or not finished); every line says which and why."""

    def __init__(self, failures: tuple[str, ...], halts: tuple[str, ...], total: int) -> None:
        self.failures, self.halts = failures, halts
        parts = [f"{len(failures)} of {total} changes failed"] if failures else []
        n = len(halts)
        parts.append(f"{n} account{'s' if n != 1 else ''} not changed as planned")
        super().__init__("apply failed: " + "; ".join(parts))

    def lines(self) -> list[str]:
        return [*self.failures, *self.halts, str(self)]


@dataclass(frozen=True)
class ApplyReport:
    results: tuple[ChangeResult, ...]
    halts: tuple[AccountHalt, ...] = ()

    @property
    def failures(self) -> tuple[ChangeResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def counts(self) -> dict[Action, int]:
        done = {action: 0 for action in _DONE}
        for result in self.results:
            if result.ok:
                done[result.change.action] += 1
        return done

    def summary_line(self) -> str:
        n = self.counts()
        return f"{n[Action.CREATE]} created, {n[Action.UPDATE]} updated, {n[Action.DELETE]} deleted"

    @property
    def lost_secrets(self) -> tuple[ChangeResult, ...]:
        """Registrations made whose shared secret could not be delivered."""
        return tuple(r for r in self.results if r.secret_lost)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.halts and not self.lost_secrets

    def raise_for_failures(self) -> None:
        try:
            self._raise_for_changes()
        except TscError as exc:
            if self.lost_secrets:
                raise SecretsLostError(self.lost_secrets, exc) from None
            raise
        if self.lost_secrets:
            raise SecretsLostError(self.lost_secrets, None)

    def _raise_for_changes(self) -> None:
        if self.halts:
            raise AccountsHaltedError(
                tuple(str(f) for f in self.failures),
                tuple(str(h) for h in self.halts),
                total=len(self.results),
            )
        if self.failures:
            raise ApplyError((str(f) for f in self.failures), total=len(self.results))


class SecretsLostError(TscError):
    """Registrations were made, but the shared secrets they were answered with could not
    be delivered: they are lost (the lines say which, and where they were to go)."""

    def __init__(self, lost: tuple[ChangeResult, ...], other: TscError | None) -> None:
        self.lost, self.other = lost, other
        n = len(lost)
        text = (
            f"{n} shared secret{'s' if n != 1 else ''} could not be delivered and "
            f"{'are' if n != 1 else 'is'} lost"
        )
        super().__init__(f"{other}; {text}" if other else f"apply failed: {text}")

    def lines(self) -> list[str]:
        before = self.other.lines()[:-1] if self.other is not None else []
        return [*before, *(str(r) for r in self.lost), str(self)]


def _run_one(client: Writer, change: Change, secrets_dir: SecretsDir | None) -> ChangeResult:
    issued = None
    try:
        if change.action is Action.DELETE:
            client.deregister(change.account, change.family, change.service)
        else:
            assert change.after is not None
            issued = client.register(
                change.account,
                change.family,
                change.service,
                change.after,
                update=change.action is Action.UPDATE,
            )
    except (AuthError, RunStopped) as exc:
        # Authentication failed, or the client stopped the run (repeated failures, the
        # deadline, Ctrl-C): nothing started after this could succeed.
        return ChangeResult(change, error=str(exc), auth_refused=True)
    except TscError as exc:
        return ChangeResult(change, error=str(exc))
    return ChangeResult(change, secret=deliver(secrets_dir, change.account, change.service, issued))


def _first_registration(changes: list[Change]) -> int:
    """After which of an account's writes to pause and look: its first registration (a
    deregistration says nothing about which run made it), else its last write."""
    return next(
        (n for n, c in enumerate(changes, start=1) if c.action is not Action.DELETE),
        len(changes),
    )


def _chains(changes: list[Change]) -> list[list[Change]]:
    """``changes`` as chains that may run side by side, each in plan order: a change of
    a family with one registration per account waits for that family's earlier ones
    (the API holds one of them at a time); any other change is a chain of its own."""
    chains: list[list[Change]] = []
    per_account: dict[FamilySpec, list[Change]] = {}
    for change in changes:
        if change.family.per_account:
            if change.family not in per_account:
                per_account[change.family] = []
                chains.append(per_account[change.family])
            per_account[change.family].append(change)
        else:
            chains.append([change])
    return chains


# Task classes, in the order workers take them: the guard's steps (re-reads, the writes
# before the pause) of every account first, then the bulk of the writes, so that the
# pauses overlap with other accounts' writes instead of ending the run.
_GUARD, _BULK = 0, 1
_POLL = 0.1  # how soon an idle worker notices ``stop``


@dataclass
class _Account:
    name: str
    changes: list[Change]
    look_after: int  # the look (after a pause) follows this many changes
    guard: AccountGuard | None = None
    started: float = 0.0
    pending: int = 0  # tasks of the current step still to finish
    listings: dict[FamilySpec, dict[str, Registration]] = field(default_factory=dict)
    errors: dict[FamilySpec, TscError] = field(default_factory=dict)


Task = Callable[[], None]


class _Run:
    """One apply: every account a small state machine (re-read, first writes, pause,
    look, the other writes side by side, look), its steps run as tasks by
    ``parallelism`` workers. A pause is a timer: no worker waits through it."""

    def __init__(
        self,
        plan: Plan,
        client: Client,
        basis: Basis,
        *,
        on_result: Callable[[ChangeResult], None],
        on_halt: Callable[[AccountHalt], None],
        stop: threading.Event,
        clock: Callable[[], float],
        secrets_dir: SecretsDir | None,
    ) -> None:
        self.client, self.basis, self.clock = client, basis, clock
        self.secrets_dir = secrets_dir
        self.on_result, self.on_halt = on_result, on_halt
        self.interrupted = stop
        self.refused = threading.Event()
        self.results: dict[int, ChangeResult] = {}
        self.halts: dict[str, AccountHalt] = {}
        self._index = {id(change): i for i, change in enumerate(plan.changes)}
        self._report = threading.Lock()  # results, halts and the callbacks
        self._cond = threading.Condition()  # the queues and every account's progress
        self._ready: list[tuple[int, int, int, Task]] = []  # (class, account, seq, task)
        self._timers: list[tuple[float, int, int, Task]] = []  # (due, account, seq, task)
        self._seq = itertools.count()
        self._error: BaseException | None = None
        by_account: dict[str, list[Change]] = defaultdict(list)
        for change in plan.changes:
            by_account[change.account].append(change)
        self.accounts = [
            _Account(name, changes, _first_registration(changes))
            for name, changes in by_account.items()
        ]
        self._open = len(self.accounts)
        self._order = {account.name: n for n, account in enumerate(self.accounts)}
        for account in self.accounts:
            self._push(_GUARD, account, partial(self._start, account))

    # -- the workers -------------------------------------------------------------------

    def run(self, parallelism: int) -> None:
        # No more workers than tasks that could ever run at once.
        most = sum(len(a.changes) + len(all_families()) for a in self.accounts)
        workers = [
            threading.Thread(target=self._work, name=f"apply-{n}")
            for n in range(max(1, min(parallelism, most)))
        ]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                worker.join()
        except BaseException:
            self.interrupted.set()  # changes on the wire finish; nothing new starts
            for worker in workers:
                worker.join()
            raise
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self.interrupted.is_set() or self._open == 0:
                        self._cond.notify_all()
                        return
                    now = time.monotonic()
                    while self._timers and self._timers[0][0] <= now:
                        _due, order, seq, task = heapq.heappop(self._timers)
                        heapq.heappush(self._ready, (_GUARD, order, seq, task))
                    if self._ready:
                        task = heapq.heappop(self._ready)[3]
                        break
                    wait = self._timers[0][0] - now if self._timers else _POLL
                    self._cond.wait(min(wait, _POLL))
            try:
                task()
            except BaseException as exc:  # a bug, or an interrupt: stop everything
                with self._cond:
                    self._error = self._error or exc
                    self.interrupted.set()
                    self._cond.notify_all()
                return

    def _push(self, kind: int, account: _Account, task: Task) -> None:
        with self._cond:
            heapq.heappush(self._ready, (kind, self._order[account.name], next(self._seq), task))
            self._cond.notify()

    def _later(self, seconds: float, account: _Account, task: Task) -> None:
        with self._cond:
            due = time.monotonic() + seconds
            heapq.heappush(self._timers, (due, self._order[account.name], next(self._seq), task))
            self._cond.notify()

    def _finish(self, account: _Account) -> None:
        with self._cond:
            self._open -= 1
            if self._open == 0:
                self._cond.notify_all()

    # -- reporting ---------------------------------------------------------------------

    def record(self, change: Change, result: ChangeResult) -> None:
        with self._report:
            self.results[self._index[id(change)]] = result
            self.on_result(result)

    def halt(self, account: str, reason: str) -> None:
        with self._report:
            self.halts[account] = AccountHalt(account, reason)
            self.on_halt(self.halts[account])

    def not_attempted(self, changes: list[Change]) -> None:
        for change in changes:
            stopped = "not attempted: an earlier failure stopped the run"
            self.record(change, ChangeResult(change, error=stopped, attempted=False))

    # -- an account's steps --------------------------------------------------------------

    def _start(self, account: _Account) -> None:
        if self.interrupted.is_set():
            return self._finish(account)
        if self.refused.is_set():
            self.not_attempted(account.changes)
            return self._finish(account)
        if account.name not in self.basis.wanted:  # a plan always reads what it changes
            self.halt(account.name, f"was not read for this plan; {_NOTHING}")
            return self._finish(account)
        account.guard = AccountGuard(self.client, self.basis, account.name)
        account.started = self.clock()
        self._read(account, 0)

    def _read(self, account: _Account, done: int) -> None:
        """Read the account's families again, side by side; then :meth:`_looked`."""
        assert account.guard is not None
        families = account.guard.families
        if not families:
            return self._looked(account, done)
        account.listings, account.errors = {}, {}
        with self._cond:
            account.pending = len(families)
        for family in families:
            self._push(_GUARD, account, partial(self._list, account, family, done))

    def _list(self, account: _Account, family: FamilySpec, done: int) -> None:
        try:
            listing = self.client.listing(account.name, family)
        except TscError as exc:
            with self._cond:
                account.errors[family] = exc
        else:
            with self._cond:
                account.listings[family] = listing
        if self._step_done(account):
            self._looked(account, done)

    def _step_done(self, account: _Account) -> bool:
        with self._cond:
            account.pending -= 1
            return account.pending == 0

    def _looked(self, account: _Account, done: int) -> None:
        """Compare what was read with what is expected; go on, or halt the account."""
        if not self._as_expected(account, done):
            return self._finish(account)
        total = len(account.changes)
        if done == 0:
            self._write(account, 0, account.look_after)
        elif done == account.look_after < total:
            self._write(account, done, total)
        else:
            self._finish(account)

    def _as_expected(self, account: _Account, done: int) -> bool:
        """Whether the listings read hold what is expected; a failure to read them halts
        the account like a change."""
        assert account.guard is not None
        total = len(account.changes)
        if done == 0:
            when, outcome = "before writing", _NOTHING
        elif done < total:
            when = "between writes"
            outcome = f"{done} of {total} changes were made, the rest were not attempted"
        else:
            when, outcome = "after writing", f"its {total} changes were made"
        failed = [account.errors[f] for f in account.guard.families if f in account.errors]
        if failed:
            if isinstance(failed[0], AuthError):
                self.refused.set()
            self.halt(account.name, f"could not be read again {when} ({failed[0]}); {outcome}")
            return False
        if account.guard.holds(account.listings):
            return True
        if done == 0:
            self.halt(account.name, CHANGED_BEFORE)
        else:
            self.halt(account.name, f"{_CHANGED_DURING}; {outcome}; {_REPLAN}")
        return False

    def _write(self, account: _Account, first: int, end: int) -> None:
        """Make changes ``first`` to ``end`` (side by side, as :func:`_chains` allows);
        then :meth:`_written`."""
        chains = _chains(account.changes[first:end])
        kind = _GUARD if first == 0 else _BULK
        with self._cond:
            account.pending = len(chains)
        for chain in chains:
            self._push(kind, account, partial(self._chain, account, chain, end))

    def _chain(self, account: _Account, chain: list[Change], end: int) -> None:
        assert account.guard is not None
        for n, change in enumerate(chain):
            if self.interrupted.is_set():
                break  # Ctrl-C: start nothing new; what is in flight finishes
            if self.refused.is_set():
                self.not_attempted(chain[n:])
                break
            result = _run_one(self.client, change, self.secrets_dir)
            with self._cond:
                account.guard.record(change, ok=result.ok)
            if result.auth_refused:
                self.refused.set()
            self.record(change, result)
        if self._step_done(account):
            self._written(account, end)

    def _written(self, account: _Account, done: int) -> None:
        if self.interrupted.is_set():
            return self._finish(account)
        if self.refused.is_set():
            self.not_attempted(account.changes[done:])
            return self._finish(account)
        if done == account.look_after:
            # Another run whose re-read came just before our writes may be writing too.
            # Give its writes time to land, then look: of two runs registering the same
            # service, the one whose registration was overwritten stops and the other
            # carries on. The pause is a timer: the workers write for other accounts.
            pause = min(self.clock() - account.started, MAX_SETTLE_SECONDS)
            self._later(pause, account, partial(self._after_pause, account, done))
        else:
            self._read(account, done)  # never report success on a mix

    def _after_pause(self, account: _Account, done: int) -> None:
        if self.interrupted.is_set():
            return self._finish(account)
        self._read(account, done)


def apply_plan(
    plan: Plan,
    client: Client,
    *,
    basis: Basis,
    parallelism: int,
    on_result: Callable[[ChangeResult], None] = lambda result: None,
    on_halt: Callable[[AccountHalt], None] = lambda halt: None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    secrets_dir: SecretsDir | None = None,
) -> ApplyReport:
    """Make every change of ``plan``; ``on_result`` hears each result as it completes,
    ``on_halt`` each account left alone.

    ``basis`` is what the plan was computed from. Before the first write to an account,
    its listings are read again; when they differ from ``basis`` (or cannot be read),
    nothing is written to that account and the report says so (``halts``). They are read
    again after its first registration (after a pause) and after its last write; when
    they then differ from ``basis`` plus this run's writes, no further change is made to
    it and the report says so too. ``clock`` times the pause.

    At most ``parallelism`` requests are made at once, across accounts and within one:
    an account's changes after its first registration (and the look that follows it)
    are made side by side, except where the API needs an order (:func:`_chains`); its
    pause leaves the workers to other accounts.

    After an authentication failure, or once the client stops the run (repeated failures,
    its deadline), nothing more is attempted: the remaining changes are reported as not
    attempted (the client never retries a refused login). Once ``stop``
    is set (or the caller is interrupted, e.g. by Ctrl-C) no new change is started;
    changes already on the wire finish, and the report holds only what was attempted.

    A registration answered with a shared secret has it written to ``secrets_dir``
    right away (:mod:`reconciler.engine.shared_secrets`); the result says what became of
    it, and one that could not be delivered fails the report (the write itself stands).
    """
    run = _Run(
        plan,
        client,
        basis,
        on_result=on_result,
        on_halt=on_halt,
        stop=stop if stop is not None else threading.Event(),
        clock=clock,
        secrets_dir=secrets_dir,
    )
    if run.accounts:
        run.run(parallelism)
    return ApplyReport(
        tuple(run.results[i] for i in sorted(run.results)),
        tuple(run.halts[a] for a in sorted(run.halts)),
    )
