"""Targeting: ``--account PATTERN`` and ``--shard K/N`` narrow a run to some of the
configured accounts.

Patterns are shell-style globs (``fleet-*``, ``0252012345-0000[12]``) matched
case-sensitively against the declared account names; an exact name is a pattern that
matches itself. A shard K/N keeps the accounts whose name hashes (SHA-256, the same on
every machine and run) to K among N: N jobs, each with its own K, split a fleet between
them with no coordination, every account in exactly one of them. Both together: the
shard's share of what the patterns select. Accounts outside the target are neither read
nor written. Pure: the CLI resolves the target, restricts the desired state, and saved
plans record it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import MappingProxyType

from reconciler.core.errors import UsageError
from reconciler.core.model import DesiredState

_SHARD = re.compile(r"([0-9]{1,9})/([0-9]{1,9})")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with 1 <= K <= N; anything else is a UsageError (one line)."""
        match = _SHARD.fullmatch(text.strip())
        if match is None or not 1 <= int(match[1]) <= int(match[2]):
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise UsageError(
                f"--shard takes K/N, two whole numbers with 1 <= K <= N (this is job K of "
                f"N), not {shown!r}"
            )
        return cls(int(match[1]), int(match[2]))

    def holds(self, account: str) -> bool:
        """Whether ``account`` falls in this shard: a stable hash of its name (the same
        for every Python, machine and run), modulo the number of shards."""
        digest = hashlib.sha256(account.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1


@dataclass(frozen=True)
class Target:
    """The patterns given (empty: none), the shard (None: none) and the accounts they
    selected, sorted."""

    patterns: tuple[str, ...]
    accounts: tuple[str, ...]
    shard: Shard | None = None

    @property
    def targeted(self) -> bool:
        return bool(self.patterns) or self.shard is not None

    def flags(self) -> str:
        """The targeting flags, as given: ``--account 'a-*' --shard 2/4``."""
        shown = [f"--account '{p}'" for p in self.patterns]
        return " ".join([*shown, *([f"--shard {self.shard}"] if self.shard else [])])

    def note(self) -> str | None:
        """What a targeted plan says about itself (None when not targeted)."""
        if not self.targeted:
            return None
        noun = "account" if len(self.accounts) == 1 else "accounts"
        verb = "select" if self.patterns and self.shard else "selects"
        return (
            f"targeted run: {self.flags()} {verb} {len(self.accounts)} {noun}; the "
            "configuration's other accounts were neither read nor planned."
        )


def select(desired: DesiredState, patterns: Sequence[str], shard: Shard | None = None) -> Target:
    """The accounts of ``desired`` that ``patterns`` match (all of them when there are
    no patterns) and that fall in ``shard``. A pattern that matches no declared account
    is an error: a typo must not quietly plan nothing. A shard may hold none of them
    (more jobs than accounts): then nothing is read or planned."""
    unique = tuple(dict.fromkeys(patterns))
    if not unique:
        chosen = sorted(desired.accounts)
    else:
        unmatched = [p for p in unique if not any(fnmatchcase(a, p) for a in desired.accounts)]
        if unmatched:
            shown = ", ".join(f"'{p}'" for p in unmatched)
            verb = "matches" if len(unmatched) == 1 else "match"
            raise UsageError(f"--account {shown} {verb} no account in the configuration")
        chosen = sorted(a for a in desired.accounts if any(fnmatchcase(a, p) for p in unique))
    if shard is not None:
        chosen = [a for a in chosen if shard.holds(a)]
    return Target(unique, tuple(chosen), shard)


def restrict(desired: DesiredState, target: Target) -> DesiredState:
    """``desired`` with only the target's accounts (those it declares)."""
    if not target.targeted:
        return desired
    return DesiredState(
        MappingProxyType({a: desired.accounts[a] for a in target.accounts if a in desired.accounts})
    )
