"""Targeting: ``--account PATTERN`` narrows a run to some of the configured accounts.

Patterns are shell-style globs (``fleet-*``, ``0252012345-0000[12]``) matched
case-sensitively against the declared account names; an exact name is a pattern that
matches itself. Accounts outside the target are neither read nor written. Pure: the
CLI resolves the target, restricts the desired state, and saved plans record it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import MappingProxyType

from reconciler.core.errors import UsageError
from reconciler.core.model import DesiredState


@dataclass(frozen=True)
class Target:
    """The patterns given (empty: no targeting) and the accounts they selected, sorted."""

    patterns: tuple[str, ...]
    accounts: tuple[str, ...]

    @property
    def targeted(self) -> bool:
        return bool(self.patterns)

    def note(self) -> str | None:
        """What a targeted plan says about itself (None when not targeted)."""
        if not self.targeted:
            return None
        shown = " ".join(f"--account '{p}'" for p in self.patterns)
        noun = "account" if len(self.accounts) == 1 else "accounts"
        return (
            f"targeted run: {shown} selects {len(self.accounts)} {noun}; the configuration's "
            "other accounts were neither read nor planned."
        )


def select(desired: DesiredState, patterns: Sequence[str]) -> Target:
    """The accounts of ``desired`` that ``patterns`` match (all of them when there are
    no patterns). A pattern that matches no declared account is an error: a typo must
    not quietly plan nothing."""
    unique = tuple(dict.fromkeys(patterns))
    if not unique:
        return Target((), tuple(sorted(desired.accounts)))
    unmatched = [p for p in unique if not any(fnmatchcase(a, p) for a in desired.accounts)]
    if unmatched:
        shown = ", ".join(f"'{p}'" for p in unmatched)
        verb = "matches" if len(unmatched) == 1 else "match"
        raise UsageError(f"--account {shown} {verb} no account in the configuration")
    chosen = sorted(a for a in desired.accounts if any(fnmatchcase(a, p) for p in unique))
    return Target(unique, tuple(chosen))


def restrict(desired: DesiredState, target: Target) -> DesiredState:
    """``desired`` with only the target's accounts (those it declares)."""
    if not target.targeted:
        return desired
    return DesiredState(
        MappingProxyType({a: desired.accounts[a] for a in target.accounts if a in desired.accounts})
    )
