"""The planner: a pure function from desired + current state to a :class:`Plan`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from deepdiff import DeepDiff

from reconciler.core import catalog
from reconciler.core.model import CurrentState, DesiredState, Family, Key, Registration
from reconciler.core.secrets import Secret
from reconciler.engine.plan import Action, Change, FieldChange, Plan, password_view

_FIELDS = ("url", "username", "password")
# Passwords are compared through an HMAC under a key that lives only in this process,
# so the structures handed to deepdiff never hold a secret.
_DIGEST_KEY = secrets.token_bytes(32)


def _digest(secret: Secret) -> str:
    return hmac.new(_DIGEST_KEY, secret.reveal().encode(), hashlib.sha256).hexdigest()


def _comparable(reg: Registration, *, compare_password: bool) -> dict[str, Any]:
    password: str | None = None
    if compare_password and reg.password is not None:
        password = _digest(reg.password)
    return {"url": reg.url, "username": reg.username, "password": password}


def _shown(reg: Registration | None, name: str) -> str | None:
    if reg is None:
        return None
    if name == "password":
        # Only shown when known: an unreturned password is not a value worth a line.
        return password_view(reg) if reg.password_known else None
    value = getattr(reg, name)
    return None if value is None else str(value)


def _field_changes(
    before: Registration | None, after: Registration | None, names: tuple[str, ...]
) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(name, _shown(before, name), _shown(after, name), sensitive=name == "password")
        for name in names
        if _shown(before, name) is not None or _shown(after, name) is not None
    )


def _changed_fields(want: Registration, have: Registration) -> tuple[str, ...]:
    compare_password = have.password_known
    diff = DeepDiff(
        _comparable(have, compare_password=compare_password),
        _comparable(want, compare_password=compare_password),
    )
    changed = {
        path.split("'")[1]
        for kind in ("values_changed", "type_changes")
        for path in diff.get(kind, {})
    }
    return tuple(name for name in _FIELDS if name in changed)


def family_for(service: str, observed: Registration | None = None) -> Family:
    """The API family serving ``service``: the catalog's, else the family whose listing
    reported it (a name the catalog does not know yet)."""
    known = catalog.family_of(service)
    if known is not None:
        return known
    if observed is not None and observed.family is not None:
        return observed.family
    return Family.M2M


def families_to_read(desired: DesiredState) -> dict[str, frozenset[Family]]:
    """The listings a plan needs per declared account: every family when pruning (an
    undeclared registration anywhere must be seen), else only the declared services'."""
    return {
        name: frozenset(Family)
        if account.prune
        else frozenset(family_for(service) for service in account.callbacks)
        for name, account in desired.accounts.items()
    }


def make_plan(desired: DesiredState, current: CurrentState) -> Plan:
    """Diff declared registrations against observed ones.

    Only declared accounts are considered. With ``prune`` an undeclared remote service is
    deleted; without it, it is left alone and mentioned in a note. When the API did not
    return a password, password drift cannot be checked and a note says so.
    """
    changes: list[Change] = []
    notes: list[str] = []
    for account in sorted(desired.accounts):
        declared = desired.accounts[account]
        remote = current.accounts.get(account, {})
        for service in sorted(set(declared.callbacks) | set(remote)):
            key = Key(account, service)
            want = declared.callbacks.get(service)
            have = remote.get(service)
            change = _change_for(key, want, have, prune=declared.prune)
            if change is not None:
                changes.append(change)
            if want is not None and have is not None and want.password and not have.password_known:
                notes.append(
                    f"{key}: the API does not return the password, so password drift "
                    "cannot be checked for this registration."
                )
        if not declared.prune:
            kept = sorted(set(remote) - set(declared.callbacks))
            if kept:
                notes.append(
                    f"{account}: prune is false, so registrations not in the configuration "
                    f"are left alone: {', '.join(kept)}."
                )
    return Plan(
        changes=tuple(changes), notes=tuple(notes), accounts=tuple(sorted(desired.accounts))
    )


def _change_for(
    key: Key, want: Registration | None, have: Registration | None, *, prune: bool
) -> Change | None:
    family = family_for(key.service, have)
    if want is not None and have is None:
        return Change(Action.CREATE, key, family, None, want, _field_changes(None, want, _FIELDS))
    if want is not None and have is not None:
        changed = _changed_fields(want, have)
        if not changed:
            return None
        return Change(Action.UPDATE, key, family, have, want, _field_changes(have, want, changed))
    if have is not None and prune:
        return Change(Action.DELETE, key, family, have, None, _field_changes(have, None, _FIELDS))
    return None
