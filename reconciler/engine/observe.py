"""Observe: read the live registrations of the wanted accounts and families, in parallel.

The client hands back normalized :class:`~reconciler.core.model.Registration` values
(the families' quirks stop in ``reconciler.thingspace.wireformat``); this module decides
what is read and merges it into one :class:`~reconciler.core.model.CurrentState`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType

from reconciler.core.errors import ApiError, NotEntitledError
from reconciler.core.families import FamilySpec, all_families
from reconciler.core.model import CurrentState, Registration
from reconciler.thingspace import wireformat
from reconciler.thingspace.client import ThingSpaceClient


def read_current(
    client: ThingSpaceClient,
    wanted: Mapping[str, frozenset[FamilySpec]],
    *,
    parallelism: int,
    on_listing: Callable[[], None] = lambda: None,
) -> CurrentState:
    """List the given families for each given account (and nothing else), in parallel with at
    most ``parallelism`` workers, and normalize. The first failure stops the reading: no
    new listing starts, the ones under way finish, and it is raised.

    Every account in ``wanted`` appears in the result, with an empty mapping when nothing
    is registered in the families read (or no family was asked for).

    ``on_listing`` hears each listing read (from the reading threads), for progress.

    Interrupted (Ctrl-C), it returns at once without waiting for the listings under way:
    reading changes nothing, and its workers are daemon threads, so the process can exit
    while a request is still waiting for its answer.
    """
    jobs = [
        (account, family)
        for account in wanted
        for family in all_families()  # declaration order, so merging is deterministic
        if family in wanted[account]
    ]
    try:
        results = _read_all(client, jobs, parallelism, on_listing) if jobs else {}
    except ApiError as error:
        raise _entitlement(error, jobs) or error from None
    accounts: dict[str, Mapping[str, Registration]] = {}
    for account in wanted:
        merged: dict[str, Registration] = {}
        for family in all_families():
            merged.update(results.get((account, family), {}))
        accounts[account] = MappingProxyType(merged)
    return CurrentState(accounts=MappingProxyType(accounts))


_Job = tuple[str, FamilySpec]


def _read_all(
    client: ThingSpaceClient, jobs: list[_Job], parallelism: int, on_listing: Callable[[], None]
) -> dict[_Job, dict[str, Registration]]:
    todo: queue.SimpleQueue[_Job] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    results: dict[_Job, dict[str, Registration]] = {}
    failures: dict[_Job, BaseException] = {}
    lock = threading.Lock()
    # Set once every listing is in, or at the first failure. The caller's thread waits
    # for this alone, not for each listing: waking it for every answer made it take the
    # interpreter lock 2,000 times in a 1,000-account plan, in turn with the workers.
    over = threading.Event()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                listing = _read_one(client, *job)
                on_listing()
            except BaseException as exc:  # handed to the caller's thread
                with lock:
                    failures[job] = exc
                over.set()
                continue
            with lock:
                results[job] = listing
                if len(results) == len(jobs):
                    over.set()

    workers = [
        threading.Thread(target=work, name=f"tsc-read-{i}", daemon=True)
        for i in range(min(parallelism, len(jobs)))
    ]
    for worker in workers:
        worker.start()
    try:
        over.wait()
    finally:
        stop.set()  # on a failure or an interrupt: start no new listing
    for worker in workers:
        worker.join()  # a failure (not an interrupt): let the listings under way finish
    if failures:
        # The first failed job in job order, not in completion order: the same run
        # reports the same error whatever the threads' timing.
        raise failures[min(failures, key=jobs.index)]
    return results


# A list call refused with these after the client renewed what it could (a 401 that a
# new bearer and a new login did not cure, or a 403): the account may not use that API.
_NOT_ENTITLED = (401, 403)


def _entitlement(error: ApiError, jobs: list[_Job]) -> NotEntitledError | None:
    """``error`` as the account's missing entitlement to a family, when it is a refused
    list call of one of ``jobs`` (a remembered login failure raised again by another
    job still names the call that was refused, so the right family is named)."""
    if error.status not in _NOT_ENTITLED or error.method != "GET":
        return None
    for account, family in jobs:
        if wireformat.list_path(family, account) == error.path:
            return NotEntitledError(account, family.name, family.title, error)
    return None


def _read_one(
    client: ThingSpaceClient, account: str, family: FamilySpec
) -> dict[str, Registration]:
    return client.listing(account, family)
