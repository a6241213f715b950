"""Value types shared by configuration, client, planner and executor.

Desired state (from YAML) and current state (from the API) are normalized into the
same :class:`Registration` shape, so the planner never sees API quirks.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

SENSITIVE = "(sensitive)"


class Family(StrEnum):
    """The API family a callback service belongs to (different URLs and body shapes)."""

    M2M = "m2m"  # Connectivity Management: /api/m2m/v1/callbacks
    FOTA = "fota"  # Software Management (FOTA v1): /api/fota/v1/callbacks


class Secret:
    """A secret string that never shows itself in ``str``/``repr``/format.

    Equality is constant-time on the value, so the planner can tell a changed
    password without anyone printing it. ``reveal()`` is for the wire only.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(" + SENSITIVE + ")"

    def __str__(self) -> str:
        return SENSITIVE

    def __format__(self, spec: str) -> str:
        return SENSITIVE

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", len(self._value)))

    def __reduce__(self) -> str | tuple[object, ...]:
        # A pickle would carry the value.
        raise TypeError("Secret values cannot be pickled")


class Key(NamedTuple):
    """Identity of one registration: one per (account, service)."""

    account: str
    service: str

    def __str__(self) -> str:
        return f"{self.account}/{self.service}"


@dataclass(frozen=True)
class Registration:
    """One callback listener registration, desired or observed.

    ``password_known`` is False when the API did not say whether a password is set
    (it is not promised to return it): then password drift cannot be checked.
    ``family`` records which API listed an observed registration, so one the catalog
    does not know is still deregistered through the family that reported it.
    """

    url: str
    username: str | None = None
    password: Secret | None = None
    password_known: bool = True
    family: Family | None = None  # where an observed registration was listed; None if declared


@dataclass(frozen=True)
class DesiredAccount:
    name: str
    prune: bool
    callbacks: Mapping[str, Registration] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class DesiredState:
    """What the configuration declares, keyed by account name."""

    accounts: Mapping[str, DesiredAccount]

    def secrets(self) -> list[str]:
        """Every secret value in the configuration (for output redaction)."""
        return [
            reg.password.reveal()
            for acc in self.accounts.values()
            for reg in acc.callbacks.values()
            if reg.password is not None and reg.password.reveal()
        ]


@dataclass(frozen=True)
class CurrentState:
    """What the API reports, for the accounts that were read (and only those)."""

    accounts: Mapping[str, Mapping[str, Registration]]

    def get(self, key: Key) -> Registration | None:
        return self.accounts.get(key.account, {}).get(key.service)
