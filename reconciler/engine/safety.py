"""Brakes: the safety rules a plan is checked against before apply writes anything.

Policy apart from mechanism (octoDNS's ``Plan.raise_if_unsafe``): :class:`SafetyPolicy`
says which overrides were given, :func:`assess` says which rules a plan sets off, and
:func:`raise_if_unsafe` raises :class:`UnsafePlanError` when one of them is not
released. All pure; the CLI only calls them.

The rules:

- **protected**: a change or delete of a registration under ``protect: true`` (its own,
  or its account's, a prune included); released by ``--allow-protected``. Creates are
  never held back: they change nothing that exists.
- **delete-threshold**: more than 30 % of the managed registrations (those read for
  the planned accounts) would be deleted, once there are at least 10; released by
  ``--force``.
- **max-deletes**: more deletes than ``--max-deletes N``; released by ``--force``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reconciler.core.errors import TscError
from reconciler.engine.plan import Action, Brake, Change, Plan

DELETE_PERCENT = 30  # more than this share of the managed registrations is too much...
MIN_MANAGED = 10  # ...once at least this many are managed

PROTECTED = "protected"
DELETE_THRESHOLD = "delete-threshold"
MAX_DELETES = "max-deletes"

ALLOW_PROTECTED_FLAG = "--allow-protected"
FORCE_FLAG = "--force"


@dataclass(frozen=True, kw_only=True)
class SafetyPolicy:
    """The overrides a plan is assessed with (all off: every brake holds)."""

    allow_protected: bool = False
    force: bool = False  # releases the threshold and max_deletes alike
    max_deletes: int | None = None  # None: no fixed limit (the threshold still applies)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allow_protected": self.allow_protected,
            "force": self.force,
            "max_deletes": self.max_deletes,
        }

    @classmethod
    def from_dict(cls, data: object) -> SafetyPolicy | None:
        """The policy ``to_dict`` wrote; None when ``data`` is not one."""
        if not isinstance(data, Mapping) or set(data) != {
            "allow_protected",
            "force",
            "max_deletes",
        }:
            return None
        allow, force, limit = data["allow_protected"], data["force"], data["max_deletes"]
        if not isinstance(allow, bool) or not isinstance(force, bool):
            return None
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            return None
        if limit is not None and (limit < 0 or force):
            return None
        return cls(allow_protected=allow, force=force, max_deletes=limit)

    def wider_than(self, other: SafetyPolicy) -> list[str]:
        """The overrides of this policy that ``other`` does not grant, as flags."""
        wider: list[str] = []
        if self.allow_protected and not other.allow_protected:
            wider.append(ALLOW_PROTECTED_FLAG)
        if self.force and not other.force:
            wider.append(FORCE_FLAG)
        if self.max_deletes is not None and (
            other.max_deletes is not None and self.max_deletes > other.max_deletes
        ):
            wider.append(f"--max-deletes {self.max_deletes}")
        return wider

    def narrowed_by(self, other: SafetyPolicy) -> SafetyPolicy:
        """This policy, with ``other``'s stricter delete limit where it has one."""
        limits = [n for n in (self.max_deletes, other.max_deletes) if n is not None]
        return replace(self, max_deletes=min(limits) if limits else None)


def _percent(part: int, whole: int) -> str:
    value = 100 * part / whole
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def assess(changes: Sequence[Change], managed: int, policy: SafetyPolicy) -> tuple[Brake, ...]:
    """The brakes ``changes`` set off, each marked released when ``policy`` overrides it."""
    brakes: list[Brake] = []
    protected = [c for c in changes if c.protected]
    if protected:
        what = "change touches" if len(protected) == 1 else "changes touch"
        brakes.append(
            Brake(
                PROTECTED,
                f"{len(protected)} {what} protected registrations",
                ALLOW_PROTECTED_FLAG,
                released=policy.allow_protected,
            )
        )
    deletes = sum(1 for c in changes if c.action is Action.DELETE)
    # Integer arithmetic: "more than 30 %" must not depend on float rounding.
    if managed >= MIN_MANAGED and deletes * 100 > DELETE_PERCENT * managed:
        brakes.append(
            Brake(
                DELETE_THRESHOLD,
                f"{deletes} of {managed} managed registrations ({_percent(deletes, managed)} %) "
                f"would be deleted, more than {DELETE_PERCENT} %",
                FORCE_FLAG,
                released=policy.force,
            )
        )
    if policy.max_deletes is not None and deletes > policy.max_deletes:
        noun = "registration" if deletes == 1 else "registrations"
        brakes.append(
            Brake(
                MAX_DELETES,
                f"{deletes} {noun} would be deleted, more than --max-deletes {policy.max_deletes}",
                FORCE_FLAG,
                released=policy.force,
            )
        )
    return tuple(brakes)


def assessed(plan: Plan, policy: SafetyPolicy) -> Plan:
    """``plan`` with its brakes as ``policy`` sees them (what renderers show)."""
    return replace(plan, brakes=assess(plan.changes, plan.managed, policy))


class UnsafePlanError(TscError):
    """Apply refused a plan its brakes hold back; nothing was changed.

    One line per protected change, one per other rule that fired, then the outcome.
    """

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("refusing to apply: nothing was changed")

    def lines(self) -> list[str]:
        return [*self.reasons, str(self)]


_VERB = {Action.CREATE: "create", Action.UPDATE: "update", Action.DELETE: "delete"}


def raise_if_unsafe(plan: Plan, policy: SafetyPolicy) -> None:
    """Raise :class:`UnsafePlanError` unless every brake ``plan`` sets off is released by
    ``policy`` (computed afresh, not taken from ``plan.brakes``)."""
    reasons: list[str] = []
    for brake in assess(plan.changes, plan.managed, policy):
        if brake.released:
            continue
        if brake.rule == PROTECTED:
            reasons.extend(
                f"{change.key}: refusing to {_VERB[change.action]} a protected registration; "
                f"{ALLOW_PROTECTED_FLAG} lets it through"
                for change in plan.changes
                if change.protected
            )
        else:
            reasons.append(f"{brake.message}; {brake.flag} lets it through")
    if reasons:
        raise UnsafePlanError(reasons)
