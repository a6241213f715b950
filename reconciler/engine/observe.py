"""Observe: read the live registrations of the wanted accounts and families, in parallel.

The client hands back normalized :class:`~reconciler.core.model.Registration` values
(the families' quirks stop in ``reconciler.thingspace.wireformat``); this module decides
what is read and merges it into one :class:`~reconciler.core.model.CurrentState`.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import MappingProxyType

from reconciler.core.families import FamilySpec, all_families
from reconciler.core.model import CurrentState, Registration
from reconciler.thingspace.client import ThingSpaceClient


def read_current(
    client: ThingSpaceClient, wanted: Mapping[str, frozenset[FamilySpec]], *, parallelism: int
) -> CurrentState:
    """List the given families for each given account (and nothing else), in parallel with at
    most ``parallelism`` workers, and normalize. The first failure raises (after the others
    finish or are cancelled) an ApiError.

    Every account in ``wanted`` appears in the result, with an empty mapping when nothing
    is registered in the families read (or no family was asked for).
    """
    jobs = [
        (account, family)
        for account in wanted
        for family in all_families()  # declaration order, so merging is deterministic
        if family in wanted[account]
    ]
    results: dict[tuple[str, FamilySpec], dict[str, Registration]] = {}
    if jobs:
        with ThreadPoolExecutor(
            max_workers=min(parallelism, len(jobs)), thread_name_prefix="tsc-read"
        ) as pool:
            futures: list[tuple[tuple[str, FamilySpec], Future[dict[str, Registration]]]] = [
                (job, pool.submit(_read_one, client, *job)) for job in jobs
            ]
            _done, pending = wait([f for _, f in futures], return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()  # running ones finish; leaving the block waits for them
        failure: BaseException | None = None
        for job, future in futures:
            if future.cancelled():
                continue
            error = future.exception()
            if error is not None:
                failure = failure or error
            else:
                results[job] = future.result()
        if failure is not None:
            raise failure
    accounts: dict[str, Mapping[str, Registration]] = {}
    for account in wanted:
        merged: dict[str, Registration] = {}
        for family in all_families():
            merged.update(results.get((account, family), {}))
        accounts[account] = MappingProxyType(merged)
    return CurrentState(accounts=MappingProxyType(accounts))


def _read_one(
    client: ThingSpaceClient, account: str, family: FamilySpec
) -> dict[str, Registration]:
    return client.listing(account, family)
