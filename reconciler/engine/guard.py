"""The lost-update guard: write to an account only while it is as the plan saw it.

A plan is computed from listings read some time before its writes (seconds for ``apply``,
hours for a saved plan). If someone else (another ``apply``, a person, another tool)
changes the account in between, writing the plan would mix two configurations and the
last writer would win silently. So before the first write to an account the executor
re-reads the listings the plan read for it and compares them with what the plan was
computed from; any difference and nothing is written to that account.

The guard also keeps track of this run's own writes, so the executor can look again while
and after it writes: an account that then holds anything else was written to by someone
else at the same time, and gets no further write from this run.

Registrations are compared in their normalized form: family, URL, username and whether
a password is set (never the password's value, which a listing may not even return).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from reconciler.core.families import PASSWORD, USERNAME, FamilySpec, all_families
from reconciler.core.model import CurrentState, Registration
from reconciler.engine.plan import UNKNOWN, Action, Change, password_view

# (family, url, username, password view): what is compared of one registration.
Fingerprint = tuple[str, str, str | None, str | None]


class Reader(Protocol):
    """The part of the API client the guard needs: one family's listing of one account."""

    def listing(self, account: str, family: FamilySpec) -> dict[str, Registration]: ...


@dataclass(frozen=True)
class Basis:
    """What a plan was computed from: the families read per account, and what they held."""

    current: CurrentState
    wanted: Mapping[str, frozenset[FamilySpec]]

    def families(self, account: str) -> tuple[FamilySpec, ...]:
        """The families the plan read for ``account``, in reading order."""
        read = self.wanted.get(account, frozenset())
        return tuple(f for f in all_families() if f in read)


def fingerprint(registration: Registration, family: FamilySpec) -> Fingerprint:
    """What is compared of ``registration`` as ``family`` lists it."""
    username = registration.username if family.accepts(USERNAME) else None
    password = password_view(registration) if family.accepts(PASSWORD) else None
    return (family.name, registration.url, username or None, password)


def _same(expected: Fingerprint, observed: Fingerprint) -> bool:
    if expected[:3] != observed[:3]:
        return False
    # A listing that does not return passwords cannot contradict what we expect.
    return UNKNOWN in (expected[3], observed[3]) or expected[3] == observed[3]


class AccountGuard:
    """What one account should look like, kept up to date with this run's own writes."""

    def __init__(self, reader: Reader, basis: Basis, account: str) -> None:
        self._reader = reader
        self.account = account
        self.families = basis.families(account)
        self._expected: dict[str, Fingerprint] = {
            service: fingerprint(reg, reg.family)
            for service, reg in basis.current.accounts.get(account, {}).items()
            if reg.family is not None
        }
        self._uncertain: set[str] = set()

    def unchanged(self) -> bool:
        """Re-read the families the plan read and say whether they hold exactly what is
        expected. Raises what the reader raises (an ApiError)."""
        return self.holds(
            {family: self._reader.listing(self.account, family) for family in self.families}
        )

    def holds(self, listings: Mapping[FamilySpec, Mapping[str, Registration]]) -> bool:
        """Whether ``listings`` (one per family of :attr:`families`, read again by the
        caller, in parallel say) hold exactly what is expected."""
        observed: dict[str, Fingerprint] = {}
        for family in self.families:
            for service, reg in listings[family].items():
                observed[service] = fingerprint(reg, family)
        services = (set(self._expected) | set(observed)) - self._uncertain
        return all(
            s in self._expected and s in observed and _same(self._expected[s], observed[s])
            for s in services
        )

    def record(self, change: Change, *, ok: bool) -> None:
        """Account for one of this run's own writes. After a failed write the service's
        state is unknown (the request may have taken effect), so it is no longer compared."""
        if not ok:
            self._uncertain.add(change.service)
        elif change.action is Action.DELETE:
            self._expected.pop(change.service, None)
        else:
            assert change.after is not None
            self._expected[change.service] = fingerprint(change.after, change.family)
