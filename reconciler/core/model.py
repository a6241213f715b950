"""Value types shared by configuration, client, planner and executor.

Desired state (from YAML) and current state (from the API) are normalized into the
same :class:`Registration` shape, so the planner never sees API quirks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from reconciler.core.families import FamilySpec
from reconciler.core.secrets import Secret


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
    ``protect`` (declared only) makes apply refuse to change it without
    ``--allow-protected``; it is never sent to the API and is no difference by itself.
    ``headers`` (Diagnostics' ``httpHeaders``): header name -> value, sorted by name; the
    values are secrets, handled as passwords are (``headers_known`` False: the API did
    not return them, so they cannot be compared).
    """

    url: str
    username: str | None = None
    password: Secret | None = None
    password_known: bool = True
    family: FamilySpec | None = None  # where an observed registration was listed; None if declared
    protect: bool = False
    headers: tuple[tuple[str, Secret], ...] | None = None
    headers_known: bool = True

    def header_values(self) -> list[str]:
        return [value.reveal() for _, value in self.headers or () if value.reveal()]


@dataclass(frozen=True)
class DesiredAccount:
    """A declared account. ``protect``: apply refuses to change or delete any of its
    registrations (a prune included) without ``--allow-protected``. ``manage``: the
    families its plans read besides those it declares (None: the default set)."""

    name: str
    prune: bool
    callbacks: Mapping[str, Registration] = field(default_factory=lambda: MappingProxyType({}))
    protect: bool = False
    manage: frozenset[FamilySpec] | None = None


@dataclass(frozen=True)
class DesiredState:
    """What the configuration declares, keyed by account name."""

    accounts: Mapping[str, DesiredAccount]

    def secrets(self) -> list[str]:
        """Every secret value in the configuration (for output redaction)."""
        found: list[str] = []
        for acc in self.accounts.values():
            for reg in acc.callbacks.values():
                if reg.password is not None and reg.password.reveal():
                    found.append(reg.password.reveal())
                found.extend(reg.header_values())
        return found


@dataclass(frozen=True)
class CurrentState:
    """What the API reports, for the accounts that were read (and only those)."""

    accounts: Mapping[str, Mapping[str, Registration]]

    def get(self, key: Key) -> Registration | None:
        return self.accounts.get(key.account, {}).get(key.service)
