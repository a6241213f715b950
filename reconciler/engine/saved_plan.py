"""Saved plans: ``plan --out FILE`` writes one, ``apply PLANFILE`` applies exactly it.

A saved plan holds the plan's secret-free serialization plus what it was computed
from: the endpoint, the configuration path, and a digest of the remote state that
was read. Applying it re-reads the same listings and re-plans; it refuses, changing
nothing, unless the remote state is unchanged and the fresh plan is exactly the saved
one. Password values are never recorded, not even hashed (a hash of a short password
can be brute-forced from a CI artifact): the digest covers only whether a password is
set, so a password changed behind our back counts only when it changes the plan.

It also records the brakes' overrides and the ``--account`` target the plan was made
with: what was reviewed. ``apply PLANFILE`` runs with them, and refuses an override or
a target that would widen them (a stricter ``--max-deletes`` is honoured).
The configuration's validation warnings travel with the plan (``show`` shows them) but
are not part of what apply must match.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.core.errors import OutputError, TscError
from reconciler.core.families import HTTP_HEADERS, FamilySpec, by_name
from reconciler.core.fileio import write_atomically
from reconciler.core.model import CurrentState, DesiredState
from reconciler.engine.plan import (
    FORMAT_VERSION,
    Plan,
    PlanDataError,
    headers_view,
    password_view,
)
from reconciler.engine.safety import SafetyPolicy
from reconciler.engine.target import Target, select

KIND = "tscallbacks-saved-plan"
EMBEDDED_SIMULATOR = "embedded-simulator"
_MAX_BYTES = 64 * 1024 * 1024


class PlanFileError(TscError):
    """A saved plan cannot be read, or is stale: nothing was changed."""


@dataclass(frozen=True)
class SavedPlan:
    plan: dict[str, Any]  # Plan.to_dict(): what was shown, and what apply must match
    endpoint: str
    config_path: str
    families: dict[str, list[str]]  # the listings read, per account
    remote_digest: str
    created_at: str
    tscallbacks_version: str = __version__
    policy: SafetyPolicy = field(default_factory=SafetyPolicy)  # the overrides it was made with
    target: Target | None = None  # the --account target; None: every configured account

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "tscallbacks_version": self.tscallbacks_version,
            "created_at": self.created_at,
            "endpoint": self.endpoint,
            "config_path": self.config_path,
            "remote": {"families": self.families, "digest": self.remote_digest},
            "safety": self.policy.to_dict(),
            "target": None
            if self.target is None
            else {"patterns": list(self.target.patterns), "accounts": list(self.target.accounts)},
            "plan": self.plan,
        }

    def accounts(self) -> list[str]:
        """The accounts the plan covers."""
        return list(self.target.accounts) if self.target is not None else sorted(self.families)

    def to_plan(self) -> Plan:
        """The saved plan as a value, to render it (read_saved_plan has checked it)."""
        return Plan.from_dict(self.plan)

    def wanted(self) -> dict[str, frozenset[FamilySpec]]:
        return {
            account: frozenset(spec for f in names if (spec := by_name(f)) is not None)
            for account, names in self.families.items()
        }


def remote_digest(current: CurrentState, wanted: dict[str, frozenset[FamilySpec]]) -> str:
    """A digest of the observed registrations (never their password values)."""
    canonical = {
        account: {
            "families": sorted(f.name for f in wanted.get(account, frozenset())),
            "registrations": {
                service: {
                    "url": reg.url,
                    "username": reg.username,
                    "password": password_view(reg),
                    "family": reg.family.name if reg.family else None,
                    # Header names only (values are secrets), and only when there are
                    # some: a version-1 plan's digest is what it always was.
                    **(
                        {HTTP_HEADERS: headers_view(reg)}
                        if reg.headers or not reg.headers_known
                        else {}
                    ),
                }
                for service, reg in sorted(current.accounts.get(account, {}).items())
            },
        }
        for account in sorted(wanted)
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def make_saved_plan(
    plan: Plan,
    current: CurrentState,
    wanted: dict[str, frozenset[FamilySpec]],
    *,
    endpoint: str,
    config_path: str,
    policy: SafetyPolicy | None = None,
    target: Target | None = None,
) -> SavedPlan:
    return SavedPlan(
        plan=plan.to_dict(),
        endpoint=endpoint,
        config_path=config_path,
        families={a: sorted(f.name for f in fams) for a, fams in sorted(wanted.items())},
        remote_digest=remote_digest(current, wanted),
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        policy=policy or SafetyPolicy(),
        target=target if target is not None and target.targeted else None,
    )


def write_saved_plan(saved: SavedPlan, path: str) -> None:
    """Write atomically, so a half-written plan never exists."""
    try:
        write_atomically(Path(path), json.dumps(saved.to_dict(), indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write plan file {path}: {exc.strerror}") from None


def read_saved_plan(path: str) -> SavedPlan:
    """Read and check a plan file; any problem is one PlanFileError line."""

    def bad(why: str) -> PlanFileError:
        return PlanFileError(f"{path}: not a usable tscallbacks plan file: {why}")

    try:
        size = os.path.getsize(path)
        if size > _MAX_BYTES:
            raise bad(f"{size} bytes is more than any plan")
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read plan file: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad("it is not JSON") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise bad("it was not written by 'tscallbacks plan --out'")
    if doc.get("format_version") != FORMAT_VERSION:
        raise bad(
            f"format version {doc.get('format_version')!r}; this tscallbacks reads "
            f"{FORMAT_VERSION!r}"
        )
    remote, plan = doc.get("remote"), doc.get("plan")
    fields = (doc.get("endpoint"), doc.get("config_path"), doc.get("created_at"))
    if not (
        isinstance(remote, dict)
        and isinstance(plan, dict)
        and isinstance(plan.get("changes"), list)
        and all(isinstance(f, str) for f in fields)
        and isinstance(remote.get("digest"), str)
        and _families_ok(remote.get("families"))
    ):
        raise bad("it is incomplete or was edited")
    # Plans written before brakes and targeting existed hold neither: no override, no target.
    policy = SafetyPolicy.from_dict(doc.get("safety", SafetyPolicy().to_dict()))
    try:
        target = _target(doc.get("target"))
    except ValueError:
        raise bad("it is incomplete or was edited") from None
    if policy is None:
        raise bad("it is incomplete or was edited")
    try:
        Plan.from_dict(plan)
    except PlanDataError as exc:
        raise bad(f"it is incomplete or was edited ({exc})") from None
    return SavedPlan(
        plan=plan,
        endpoint=doc["endpoint"],
        config_path=doc["config_path"],
        families=remote["families"],
        remote_digest=remote["digest"],
        created_at=doc["created_at"],
        tscallbacks_version=str(doc.get("tscallbacks_version", "")),
        policy=policy,
        target=target,
    )


def _target(value: object) -> Target | None:
    """The recorded target (None for none); ValueError when it is malformed."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"patterns", "accounts"}:
        raise ValueError("target")
    patterns, accounts = value["patterns"], value["accounts"]
    if not (
        isinstance(patterns, list)
        and isinstance(accounts, list)
        and patterns
        and all(isinstance(p, str) for p in patterns)
        and all(isinstance(a, str) for a in accounts)
    ):
        raise ValueError("target")
    return Target(tuple(patterns), tuple(accounts))


def _families_ok(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(account, str)
        and isinstance(fams, list)
        and all(isinstance(f, str) and by_name(f) is not None for f in fams)
        for account, fams in value.items()
    )


def check_target(saved: SavedPlan, *, endpoint: str, path: str) -> None:
    """Refuse a plan made against another endpoint (before anything is sent)."""
    if endpoint != saved.endpoint:
        raise PlanFileError(
            f"{path}: the plan was made against {saved.endpoint}, not {endpoint}; nothing "
            "was changed"
        )


def check_policy(saved: SavedPlan, given: SafetyPolicy, *, path: str) -> SafetyPolicy:
    """The policy to apply ``saved`` with: its own, made stricter by a lower
    ``--max-deletes``. An override the plan was not made with is refused: it would let
    through what the reviewed plan said apply refuses."""
    wider = given.wider_than(saved.policy)
    if wider:
        flags = " and ".join(wider)
        raise PlanFileError(
            f"{path}: the plan was made without {flags}; apply PLANFILE cannot add it; "
            f"nothing was changed; run 'tscallbacks plan ... {wider[0]} --out {path}' "
            "and review it"
        )
    if given.max_deletes is not None and saved.policy.force:
        raise PlanFileError(
            f"{path}: the plan was made with --force, which releases --max-deletes; "
            "nothing was changed"
        )
    return saved.policy.narrowed_by(given)


def check_accounts(
    saved: SavedPlan, desired: DesiredState, patterns: list[str], *, path: str
) -> Target:
    """The target to apply ``saved`` with: the one it was made with. ``--account`` may
    repeat it, never widen or change it; a planned account no longer declared is stale."""
    planned = saved.accounts()
    if patterns:
        chosen = select(desired, patterns).accounts
        extra = [a for a in chosen if a not in planned]
        if extra:
            raise PlanFileError(
                f"{path}: --account would widen the saved plan: it selects "
                f"{_names(extra)}, which the plan does not cover; nothing was changed"
            )
        left_out = [a for a in planned if a not in chosen]
        if left_out:
            raise PlanFileError(
                f"{path}: --account leaves out {_names(left_out)}, which the saved plan "
                "covers; apply PLANFILE makes the whole plan; nothing was changed; to "
                "apply fewer accounts, plan them with --account --out and apply that file"
            )
    if saved.target is None:
        return Target((), tuple(sorted(desired.accounts)))
    gone = [a for a in planned if a not in desired.accounts]
    if gone:
        raise PlanFileError(
            f"{path}: the saved plan is stale: the configuration no longer declares "
            f"{_names(gone)}; nothing was changed; run 'tscallbacks plan -c "
            f"{saved.config_path} --out {path}' again and review it"
        )
    return saved.target


def _names(accounts: list[str], limit: int = 3) -> str:
    shown = ", ".join(f"'{a}'" for a in accounts[:limit])
    return shown + (f" and {len(accounts) - limit} more" if len(accounts) > limit else "")


def check_fresh(
    saved: SavedPlan,
    *,
    planned_wanted: dict[str, frozenset[FamilySpec]],
    plan: Plan,
    current: CurrentState,
    path: str,
) -> None:
    """Refuse (PlanFileError) unless ``plan``/``current`` are exactly what was saved."""
    rerun = f"run 'tscallbacks plan -c {saved.config_path} --out {path}' again and review it"
    if planned_wanted != saved.wanted():
        raise PlanFileError(
            f"{path}: the saved plan is stale: the configuration now covers different "
            f"accounts or services; nothing was changed; {rerun}"
        )
    if remote_digest(current, saved.wanted()) != saved.remote_digest:
        raise PlanFileError(
            f"{path}: the saved plan is stale: remote state changed since it was made; "
            f"nothing was changed; {rerun}"
        )
    if _changes_only(plan.to_dict()) != _changes_only(saved.plan):
        raise PlanFileError(
            f"{path}: the saved plan is stale: the changes needed now differ from the saved "
            f"ones (the configuration, or a password, changed); nothing was changed; {rerun}"
        )


def _changes_only(plan: dict[str, Any]) -> dict[str, Any]:
    """What apply must match: the plan without the configuration's warnings (a warning
    changes nothing remote, and names files by the path they were read through)."""
    return {key: value for key, value in plan.items() if key != "warnings"}
