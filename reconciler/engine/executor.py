"""The apply executor: makes a plan's changes through the client, one result per change.

Changes of one account run in plan order; accounts run in parallel (bounded). A failed
change does not stop the others; the report names every failure. An update is a
re-registration or a PUT, as the family does it (the client reads that from its table).

Lost updates (:mod:`reconciler.engine.guard`): before the first write to an account its
listings are read again and compared with what the plan was computed from; an account
changed by someone else in between gets no write at all. They are read once more after
the first registration written (after a pause, so that another run racing this one has
landed its own) and after the last write; an account that then holds anything but what
this run wrote gets no further write and is never reported as applied. The report names
every such account.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from reconciler.core.errors import ApplyError, AuthError, TscError
from reconciler.core.families import FamilySpec
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

    After an authentication failure, or once the client stops the run (repeated failures,
    its deadline), nothing more is attempted: the remaining changes are reported as not
    attempted (the client never retries a refused login). Once ``stop``
    is set (or the caller is interrupted, e.g. by Ctrl-C) no new change is started;
    changes already on the wire finish, and the report holds only what was attempted.

    A registration answered with a shared secret has it written to ``secrets_dir``
    right away (:mod:`reconciler.engine.shared_secrets`); the result says what became of
    it, and one that could not be delivered fails the report (the write itself stands).
    """
    by_account: dict[str, list[Change]] = defaultdict(list)
    for change in plan.changes:
        by_account[change.account].append(change)
    results: dict[int, ChangeResult] = {}
    halts: dict[str, AccountHalt] = {}
    index = {id(change): i for i, change in enumerate(plan.changes)}
    lock = threading.Lock()
    refused = threading.Event()
    interrupted = stop if stop is not None else threading.Event()

    def record(change: Change, result: ChangeResult) -> None:
        with lock:
            results[index[id(change)]] = result
            on_result(result)

    def halt(account: str, reason: str) -> None:
        with lock:
            halts[account] = AccountHalt(account, reason)
            on_halt(halts[account])

    def not_attempted(changes: list[Change]) -> None:
        for change in changes:
            stopped = "not attempted: an earlier failure stopped the run"
            record(change, ChangeResult(change, error=stopped, attempted=False))

    def as_expected(guard: AccountGuard, done: int, total: int) -> bool:
        """Re-read the account and compare; a failure to read it halts it like a change."""
        if done == 0:
            when, outcome = "before writing", _NOTHING
        elif done < total:
            when = "between writes"
            outcome = f"{done} of {total} changes were made, the rest were not attempted"
        else:
            when, outcome = "after writing", f"its {total} changes were made"
        try:
            if guard.unchanged():
                return True
            if done == 0:
                halt(guard.account, CHANGED_BEFORE)
            else:
                halt(guard.account, f"{_CHANGED_DURING}; {outcome}; {_REPLAN}")
        except TscError as exc:
            if isinstance(exc, AuthError):
                refused.set()
            halt(guard.account, f"could not be read again {when} ({exc}); {outcome}")
        return False

    def run_account(account: str, changes: list[Change]) -> None:
        if interrupted.is_set():
            return
        if refused.is_set():
            not_attempted(changes)
            return
        if account not in basis.wanted:  # a plan always reads what it changes
            halt(account, f"was not read for this plan; {_NOTHING}")
            return
        guard = AccountGuard(client, basis, account)
        started = clock()
        if not as_expected(guard, 0, len(changes)):
            return
        look_after = _first_registration(changes)
        for done, change in enumerate(changes, start=1):
            if interrupted.is_set():
                return  # Ctrl-C: start nothing new; what is in flight finishes
            if refused.is_set():
                not_attempted(changes[done - 1 :])
                return
            result = _run_one(client, change, secrets_dir)
            guard.record(change, ok=result.ok)
            if result.auth_refused:
                refused.set()
            record(change, result)
            if done == look_after and not refused.is_set():
                # Another run whose re-read came just before our writes may be writing
                # too. Give its writes time to land, then look: of two runs registering
                # the same service, the one whose registration was overwritten stops
                # and the other carries on.
                if interrupted.wait(min(clock() - started, MAX_SETTLE_SECONDS)):
                    return
                if not as_expected(guard, done, len(changes)):
                    return
        if look_after < len(changes) and not refused.is_set() and not interrupted.is_set():
            as_expected(guard, len(changes), len(changes))  # never report success on a mix

    workers = max(1, min(parallelism, len(by_account)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        futures = [pool.submit(run_account, *item) for item in by_account.items()]
        try:
            for future in futures:
                future.result()
        except BaseException:
            interrupted.set()
            raise
    return ApplyReport(
        tuple(results[i] for i in sorted(results)),
        tuple(halts[a] for a in sorted(halts)),
    )
