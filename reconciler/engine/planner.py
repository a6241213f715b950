"""The planner: a pure function from desired + current state to a :class:`Plan`.

A declared service that is not registered is a create, a registered one not declared (with
prune) a delete. Registrations on both sides that differ are put in one comparable shape,
``{account: {service: {field: value}}}``, and deepdiff's tree view says which fields
differ: the update's. Paths come from the tree view as lists, never parsed from
deepdiff's display strings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from reconciler.core import catalog
from reconciler.core.families import DEFAULT_MANAGED, HTTP_HEADERS, FamilySpec, all_families
from reconciler.core.model import CurrentState, DesiredAccount, DesiredState, Key, Registration
from reconciler.core.secrets import Secret
from reconciler.engine.plan import (
    Action,
    Change,
    FieldChange,
    Plan,
    headers_view,
    password_view,
)
from reconciler.engine.safety import SafetyPolicy, assess
from reconciler.engine.shared_secrets import secret_notes

_FIELDS = ("url", "username", "password", HTTP_HEADERS)
_SECRET_FIELDS = ("password", HTTP_HEADERS)
# Passwords are compared through an HMAC under a key that lives only in this process,
# so the structures handed to deepdiff never hold a secret.
_DIGEST_KEY = secrets.token_bytes(32)

Comparable = dict[str, dict[str, dict[str, Any]]]  # account -> service -> field -> value


def _digest(secret: Secret) -> str:
    return hmac.new(_DIGEST_KEY, secret.reveal().encode(), hashlib.sha256).hexdigest()


def _headers_digest(reg: Registration) -> str | None:
    if not reg.headers:
        return None
    digest = hmac.new(_DIGEST_KEY, digestmod=hashlib.sha256)
    for name, value in reg.headers:
        # Header names are case-insensitive; a value is compared as sent.
        digest.update(f"{name.lower()}\0{_digest(value)}\0".encode())
    return digest.hexdigest()


def _comparable(
    reg: Registration, *, compare_password: bool, compare_headers: bool = True
) -> dict[str, Any]:
    password: str | None = None
    if compare_password and reg.password is not None:
        password = _digest(reg.password)
    view: dict[str, Any] = {"url": reg.url, "username": reg.username, "password": password}
    if compare_headers and reg.headers:  # absent for families without headers
        view[HTTP_HEADERS] = _headers_digest(reg)
    return view


def _shown(reg: Registration | None, name: str) -> str | None:
    if reg is None:
        return None
    if name == "password":
        # Only shown when known: an unreturned password is not a value worth a line.
        return password_view(reg) if reg.password_known else None
    if name == HTTP_HEADERS:
        return headers_view(reg) if reg.headers_known else None
    value = getattr(reg, name)
    return None if value is None else str(value)


def _field_changes(
    before: Registration | None, after: Registration | None, names: tuple[str, ...]
) -> tuple[FieldChange, ...]:
    changes = []
    for name in names:
        old, new = _shown(before, name), _shown(after, name)
        if old is not None or new is not None:
            changes.append(FieldChange(name, old, new, sensitive=name in _SECRET_FIELDS))
    return tuple(changes)


def family_for(service: str, observed: Registration | None = None) -> FamilySpec:
    """The API family serving ``service``: the catalog's, else the family whose listing
    reported it (a name the catalog does not know yet)."""
    known = catalog.family_of(service)
    if known is not None:
        return known
    if observed is not None and observed.family is not None:
        return observed.family
    raise ValueError(f"no API family is known for service {service!r}")


def families_to_read(desired: DesiredState) -> dict[str, frozenset[FamilySpec]]:
    """The listings a plan needs per declared account: the families its services are in,
    and, when it prunes, the families it manages (its ``manage:`` list, by default the two
    families version 1 always read), which prune then covers. Never every family: each
    costs a request per account and fails for an account not entitled to that API."""
    wanted: dict[str, frozenset[FamilySpec]] = {}
    for name, account in desired.accounts.items():
        declared = frozenset(family_for(service) for service in account.callbacks)
        if account.prune:
            managed = DEFAULT_MANAGED if account.manage is None else account.manage
            declared |= frozenset(managed)
        wanted[name] = declared
    return wanted


def reading_lines(
    desired: DesiredState, wanted: Mapping[str, frozenset[FamilySpec]]
) -> tuple[str, ...]:
    """For the plan header: which families are read for how many accounts, one line per
    set ("Reading m2m, fota for 1000 accounts"). Empty when the configuration means what
    a version-1 file meant (no ``manage:``, only version-1 families read), so such a
    plan shows exactly what it always did."""
    legacy = set(DEFAULT_MANAGED)
    if all(
        desired.accounts[name].manage is None and families <= legacy
        for name, families in wanted.items()
    ):
        return ()
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for name in sorted(wanted):
        order = tuple(spec.name for spec in all_families() if spec in wanted[name])
        groups[order].append(name)
    lines = []
    for order, names in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        read = ", ".join(order) if order else "no families"
        who = f"account {names[0]}" if len(names) == 1 else f"{len(names)} accounts"
        lines.append(f"Reading {read} for {who}")
    return tuple(lines)


def _same(have: Registration, want: Registration) -> bool:
    """Whether the two are equal in the comparable shape, without building it: a
    password or headers count only when the API returned them (as in :func:`_comparable`)."""
    if have.url != want.url or have.username != want.username:
        return False
    if have.password_known and have.password != want.password:
        return False
    if not have.headers_known or not (have.headers or want.headers):
        return True
    return _headers_digest(have) == _headers_digest(want)


def _differences(
    desired: DesiredState, current: CurrentState
) -> tuple[set[Key], set[Key], dict[Key, set[str]]]:
    """(keys to create, keys to delete, changed field names per key to update)."""
    created, deleted, before, after = _views(desired, current)
    return created, deleted, _changed_fields(before, after)


def _views(
    desired: DesiredState, current: CurrentState
) -> tuple[set[Key], set[Key], Comparable, Comparable]:
    """(keys to create, keys to delete, what is, what should be).

    A declared service with no registration is a create and, with prune, a registered
    service not declared is a delete: set differences, with no field to compare. Without
    prune, undeclared remote services are left out (they are not ours to change). Most
    registrations on both sides are unchanged (:func:`_same`); only the ones that differ
    are put in the comparable shape, for deepdiff to say which of their fields differ."""
    created: set[Key] = set()
    deleted: set[Key] = set()
    before: Comparable = {}
    after: Comparable = {}
    for account, declared in desired.accounts.items():
        remote = current.accounts.get(account, {})
        wanted = declared.callbacks
        for service, want in wanted.items():
            have = remote.get(service)
            if have is None:
                created.add(Key(account, service))
            elif not _same(have, want):
                # A password or headers the API did not return are left out of both.
                known = {
                    "compare_password": have.password_known,
                    "compare_headers": have.headers_known,
                }
                before.setdefault(account, {})[service] = _comparable(have, **known)
                after.setdefault(account, {})[service] = _comparable(want, **known)
        if declared.prune:
            deleted.update(Key(account, service) for service in remote if service not in wanted)
    return created, deleted, before, after


def _changed_fields(before: Comparable, after: Comparable) -> dict[Key, set[str]]:
    """The field names that differ per registration, for registrations on both sides."""
    updated: dict[Key, set[str]] = defaultdict(set)
    if not before:
        return updated
    from deepdiff import DeepDiff  # imported only when a registration differs

    # threshold_to_diff_deeper=0: always report per service and field, never a whole
    # account as one changed value (deepdiff's default does that when few keys match).
    tree = DeepDiff(before, after, view="tree", threshold_to_diff_deeper=0)
    # A field set on one side only (headers) is an added or removed item; the rest are
    # changed values.
    kinds = ("dictionary_item_added", "dictionary_item_removed", "values_changed", "type_changes")
    for kind in kinds:
        for level in tree.get(kind, []):
            account, service, name = level.path(output_format="list")
            updated[Key(account, service)].add(name)
    return updated


def delete_reason(service: str) -> str:
    """Why the plan deletes an undeclared ``service`` (it does so only when pruning)."""
    known = catalog.family_of(service) is not None
    what = "not declared" if known else "not declared (a service tscallbacks does not know)"
    return f"{what}; prune is on for this account"


def _protected(account: DesiredAccount, action: Action, want: Registration | None) -> bool:
    """A change apply holds back without --allow-protected: an update or a delete of a
    registration under ``protect`` (its own or its account's). Creates never are."""
    if action is Action.CREATE:
        return False
    return account.protect or (want is not None and want.protect)


def make_plan(
    desired: DesiredState,
    current: CurrentState,
    *,
    policy: SafetyPolicy | None = None,
    notes: tuple[str, ...] = (),
    reading: tuple[str, ...] = (),
) -> Plan:
    """Diff declared registrations against observed ones.

    Only declared accounts are considered. With ``prune`` an undeclared remote service is
    deleted; without it, it is left alone and mentioned in a note. When the API did not
    return a password, password drift cannot be checked and a note says so. The plan's
    brakes are assessed with ``policy`` (every brake holding when None); ``notes`` go
    first among its notes. A registration answered with a shared secret gets a note
    saying it may rotate and where apply writes it.
    """
    created, deleted, updated = _differences(desired, current)
    changes: list[Change] = []
    for key in sorted(created | deleted | set(updated)):
        account = desired.accounts[key.account]
        want = account.callbacks.get(key.service)
        have = current.get(key)
        family = family_for(key.service, have)
        if key in created and want is not None:
            fields = _field_changes(None, want, _FIELDS)
            changes.append(Change(Action.CREATE, key, family, None, want, fields))
        elif key in deleted and have is not None:
            fields = _field_changes(have, None, _FIELDS)
            protected = _protected(account, Action.DELETE, None)
            reason = delete_reason(key.service)
            changes.append(
                Change(Action.DELETE, key, family, have, None, fields, protected, reason)
            )
        elif want is not None and have is not None:
            names = tuple(name for name in _FIELDS if name in updated[key])
            fields = _field_changes(have, want, names)
            protected = _protected(account, Action.UPDATE, want)
            changes.append(Change(Action.UPDATE, key, family, have, want, fields, protected))
    managed = sum(len(current.accounts.get(name, {})) for name in desired.accounts)
    return Plan(
        changes=tuple(changes),
        notes=(*notes, *_notes(desired, current), *secret_notes(changes)),
        accounts=tuple(sorted(desired.accounts)),
        reading=reading,
        managed=managed,
        brakes=assess(changes, managed, policy or SafetyPolicy()),
    )


def _notes(desired: DesiredState, current: CurrentState) -> tuple[str, ...]:
    notes: list[str] = []
    for account in sorted(desired.accounts):
        declared = desired.accounts[account]
        remote = current.accounts.get(account, {})
        for service in sorted(declared.callbacks):
            want, have = declared.callbacks[service], remote.get(service)
            if have is not None and want.password and not have.password_known:
                notes.append(
                    f"{Key(account, service)}: the API does not return the password, so "
                    "password drift cannot be checked for this registration."
                )
            if have is not None and want.headers and not have.headers_known:
                notes.append(
                    f"{Key(account, service)}: the API does not return the header values, "
                    "so their drift cannot be checked for this registration."
                )
        if not declared.prune:
            kept = sorted(set(remote) - set(declared.callbacks))
            if kept:
                notes.append(
                    f"{account}: prune is false, so registrations not in the configuration "
                    f"are left alone: {', '.join(kept)}."
                )
    return tuple(notes)
