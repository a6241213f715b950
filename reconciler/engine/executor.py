"""The apply executor: makes a plan's changes through the client, one result per change.

Changes of one account run in plan order; accounts run in parallel (bounded). A failed
change does not stop the others; the report names every failure. An update is a
re-registration or a PUT, as the family does it (the client reads that from its table).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from reconciler.core.errors import ApplyError, AuthError, TscError
from reconciler.core.families import FamilySpec
from reconciler.core.model import Registration
from reconciler.engine.plan import Action, Change, Plan
from reconciler.thingspace.guard import RunStopped

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
    ) -> None: ...

    def deregister(self, account: str, family: FamilySpec, service: str) -> None: ...


@dataclass(frozen=True)
class ChangeResult:
    change: Change
    error: str | None = None
    auth_refused: bool = False
    attempted: bool = True  # False: skipped after a failure that stopped the run

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        if self.ok:
            return f"{self.change.key}: {_DONE[self.change.action]}"
        return f"{self.change.key}: {self.change.action.value} failed: {self.error}"


@dataclass(frozen=True)
class ApplyReport:
    results: tuple[ChangeResult, ...]

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

    def raise_for_failures(self) -> None:
        if self.failures:
            raise ApplyError((str(f) for f in self.failures), total=len(self.results))


def _run_one(client: Writer, change: Change) -> ChangeResult:
    try:
        if change.action is Action.DELETE:
            client.deregister(change.account, change.family, change.service)
        else:
            assert change.after is not None
            client.register(
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
    return ChangeResult(change)


def apply_plan(
    plan: Plan,
    client: Writer,
    *,
    parallelism: int,
    on_result: Callable[[ChangeResult], None] = lambda result: None,
    stop: threading.Event | None = None,
) -> ApplyReport:
    """Make every change of ``plan``; ``on_result`` hears each result as it completes.

    After an authentication failure, or once the client stops the run (repeated failures,
    its deadline), nothing more is attempted: the remaining changes are reported as not
    attempted (the client never retries a refused login). Once ``stop``
    is set (or the caller is interrupted, e.g. by Ctrl-C) no new change is started;
    changes already on the wire finish, and the report holds only what was attempted.
    """
    by_account: dict[str, list[Change]] = defaultdict(list)
    for change in plan.changes:
        by_account[change.account].append(change)
    results: dict[int, ChangeResult] = {}
    index = {id(change): i for i, change in enumerate(plan.changes)}
    lock = threading.Lock()
    refused = threading.Event()
    interrupted = stop if stop is not None else threading.Event()

    def run_account(changes: list[Change]) -> None:
        for change in changes:
            if interrupted.is_set():
                return  # Ctrl-C: start nothing new; what is in flight finishes
            if refused.is_set():
                stopped = "not attempted: an earlier failure stopped the run"
                result = ChangeResult(change, error=stopped, attempted=False)
            else:
                result = _run_one(client, change)
                if result.auth_refused:
                    refused.set()
            with lock:
                results[index[id(change)]] = result
                on_result(result)

    workers = max(1, min(parallelism, len(by_account)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        futures = [pool.submit(run_account, changes) for changes in by_account.values()]
        try:
            for future in futures:
                future.result()
        except BaseException:
            interrupted.set()
            raise
    return ApplyReport(tuple(results[i] for i in sorted(results)))
