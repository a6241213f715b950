"""The plan: a frozen value describing exactly what an apply would change.

Renderers and the executor consume it; nothing here does I/O. ``to_dict`` is the
secret-free serialization used by ``--output json`` (and, later, saved plans).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.core.families import FamilySpec
from reconciler.core.model import Key, Registration
from reconciler.core.secrets import SENSITIVE

FORMAT_VERSION = "1"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


ACTION_ORDER = (Action.CREATE, Action.UPDATE, Action.DELETE)


@dataclass(frozen=True)
class FieldChange:
    """One field's difference, with values already made safe to show."""

    name: str
    before: str | None
    after: str | None
    sensitive: bool = False


@dataclass(frozen=True)
class Change:
    """One registration to create, update or delete.

    ``protected``: it changes or deletes a registration under ``protect: true`` (its own
    or its account's), so apply refuses it without ``--allow-protected``. ``reason``
    says why a delete happens.
    """

    action: Action
    key: Key
    family: FamilySpec
    before: Registration | None
    after: Registration | None
    fields: tuple[FieldChange, ...]
    protected: bool = False
    reason: str | None = None

    @property
    def account(self) -> str:
        return self.key.account

    @property
    def service(self) -> str:
        return self.key.service

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "account": self.account,
            "service": self.service,
            "family": self.family.name,
            "before": registration_view(self.before),
            "after": registration_view(self.after),
            "changed_fields": [f.name for f in self.fields],
            "protected": self.protected,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Brake:
    """A safety rule this plan sets off (see :mod:`reconciler.engine.safety`).

    ``message`` is one line saying what fired; ``flag`` is the apply option that lets
    the plan through; ``released`` says the plan was assessed with that option given.
    """

    rule: str  # "protected", "delete-threshold", "max-deletes"
    message: str
    flag: str
    released: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "flag": self.flag,
            "released": self.released,
        }


@dataclass(frozen=True)
class Plan:
    """Changes in deterministic order (account, service), plus notes for the reader.

    ``managed`` counts the registrations read for the planned accounts (what the delete
    threshold is a fraction of); ``brakes`` are the safety rules the plan sets off.
    """

    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    managed: int = 0
    brakes: tuple[Brake, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[Action, int]:
        counted = Counter(c.action for c in self.changes)
        return {action: counted.get(action, 0) for action in ACTION_ORDER}

    @property
    def refused(self) -> bool:
        """Apply refuses this plan: a brake fired and its flag was not given."""
        return any(not brake.released for brake in self.brakes)

    def summary_line(self) -> str:
        n = self.counts()
        return (
            f"Plan: {n[Action.CREATE]} to create, {n[Action.UPDATE]} to update, "
            f"{n[Action.DELETE]} to delete."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "accounts": list(self.accounts),
            "changes": [c.to_dict() for c in self.changes],
            "summary": {a.value: n for a, n in self.counts().items()},
            "notes": list(self.notes),
            "safety": {
                "managed": self.managed,
                "apply_refused": self.refused,
                "brakes": [b.to_dict() for b in self.brakes],
            },
        }


def password_view(reg: Registration) -> str | None:
    """How a registration's password may be shown: never its value."""
    if not reg.password_known:
        return "(unknown)"
    return SENSITIVE if reg.password is not None else None


def registration_view(reg: Registration | None) -> dict[str, Any] | None:
    """A registration as showable data: url and username as they are, password masked."""
    if reg is None:
        return None
    return {"url": reg.url, "username": reg.username, "password": password_view(reg)}
