"""Current state: read the live registrations and normalize them once.

The API's quirks stop here (FOTA's ``aname``/``name`` and empty body, M2M's
``accountName``/``serviceName``, passwords that may or may not be returned), so the
planner compares like with like: :class:`reconciler.core.model.Registration` values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import MappingProxyType
from typing import Any

from reconciler.core.errors import ApiError, UsageError
from reconciler.core.model import CurrentState, Family, Registration
from reconciler.core.secrets import Secret
from reconciler.thingspace.client import ThingSpaceClient, callbacks_path

Normalizer = Callable[[str, list[dict[str, Any]]], dict[str, Registration]]


def read_current(
    client: ThingSpaceClient, wanted: Mapping[str, frozenset[Family]], *, parallelism: int
) -> CurrentState:
    """List the given families for each given account (and nothing else), in parallel with at
    most ``parallelism`` workers, and normalize. The first failure raises (after the others
    finish or are cancelled) an ApiError.

    Every account in ``wanted`` appears in the result, with an empty mapping when nothing
    is registered in the families read (or no family was asked for).
    """
    if parallelism < 1:
        raise UsageError("parallelism must be at least 1")
    jobs = [
        (account, family)
        for account in wanted
        for family in Family  # declaration order, so merging is deterministic
        if family in wanted[account]
    ]
    results: dict[tuple[str, Family], dict[str, Registration]] = {}
    if jobs:
        with ThreadPoolExecutor(
            max_workers=min(parallelism, len(jobs)), thread_name_prefix="tsc-read"
        ) as pool:
            futures: list[tuple[tuple[str, Family], Future[dict[str, Registration]]]] = [
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
        for family in Family:
            merged.update(results.get((account, family), {}))
        accounts[account] = MappingProxyType(merged)
    return CurrentState(accounts=MappingProxyType(accounts))


def _read_one(client: ThingSpaceClient, account: str, family: Family) -> dict[str, Registration]:
    return NORMALIZERS[family](account, client.list_callbacks(account, family))


def normalize_m2m(account: str, items: list[dict[str, Any]]) -> dict[str, Registration]:
    """M2M list items -> ``{serviceName: Registration}``.

    A ``password`` field that is absent means "unknown" (the API is not promised to
    return it); present but empty/null means "no password".
    """
    path = callbacks_path(Family.M2M, account)
    found: dict[str, Registration] = {}
    for index, item in enumerate(items):
        if not _belongs(item, "accountName", account, path, index):
            continue
        service = _required(item, "serviceName", path, index)
        username = _optional(item, "username", path, index)
        if "password" in item:
            password = _optional(item, "password", path, index)
            secret, known = (Secret(password) if password else None), True
        else:
            secret, known = None, False
        found[service] = Registration(
            url=_required(item, "url", path, index),
            username=username,
            password=secret,
            password_known=known,
            family=Family.M2M,
        )
    return found


def normalize_fota(account: str, items: list[dict[str, Any]]) -> dict[str, Registration]:
    """FOTA list items (``aname``/``name``/``url``) -> ``{name: Registration}``; FOTA has
    no username or password, so the password is known to be absent."""
    path = callbacks_path(Family.FOTA, account)
    found: dict[str, Registration] = {}
    for index, item in enumerate(items):
        if not _belongs(item, "aname", account, path, index):
            continue
        service = _required(item, "name", path, index)
        found[service] = Registration(url=_required(item, "url", path, index), family=Family.FOTA)
    return found


NORMALIZERS: Mapping[Family, Normalizer] = MappingProxyType(
    {Family.M2M: normalize_m2m, Family.FOTA: normalize_fota}
)


def _unexpected(path: str, index: int, what: str) -> ApiError:
    # Only field names and positions: values may be secrets (a password).
    return ApiError("GET", path, 200, detail=f"unexpected response: item {index} {what}")


def _belongs(item: object, field: str, account: str, path: str, index: int) -> bool:
    if not isinstance(item, dict):
        raise _unexpected(path, index, "is not an object")
    owner = item.get(field)
    if owner is None:
        return True  # no owner named: the listing was for this account
    if isinstance(owner, bool) or not isinstance(owner, str | int):
        raise _unexpected(path, index, f"has a non-string {field}")
    return str(owner) == account


def _required(item: dict[str, Any], field: str, path: str, index: int) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise _unexpected(path, index, f"has no {field}")
    return value


def _optional(item: dict[str, Any], field: str, path: str, index: int) -> str | None:
    value = item.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _unexpected(path, index, f"has a non-string {field}")
    return value
