"""``apply --output json``: what an apply did, as one JSON document for pipelines.

Every change of the plan is listed, in plan order, with its outcome: ``ok``,
``failed`` (with the error line) or ``not_attempted`` (a failure stopped the run
first). Error text is the executor's one line, whose API part had every known
secret scrubbed where it entered the error; passwords themselves never appear here. A
registration answered with a shared secret has ``shared_secret`` (``status``: ``delivered``,
``not_issued`` or ``undelivered``; ``file``; ``error``), never the secret; an undelivered
one makes the ``status`` ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from reconciler.core import escape
from reconciler.engine.executor import AccountHalt, ChangeResult
from reconciler.engine.plan import ACTION_ORDER, FORMAT_VERSION, Change, Plan

OUTCOMES = ("ok", "failed", "not_attempted")


def _outcome(result: ChangeResult | None) -> str:
    if result is None or not result.attempted:
        return "not_attempted"
    return "ok" if result.ok else "failed"


def apply_result(
    plan: Plan, results: Sequence[ChangeResult], halts: Sequence[AccountHalt] = ()
) -> dict[str, Any]:
    """The document: ``status`` (``no_changes``, ``applied`` or ``failed``), the plan's
    ``summary``, what was ``applied`` per action, ``counts`` per outcome, ``changes``.
    A change of an account left alone (changed by someone else since the plan) is
    ``not_attempted`` with the reason as its error."""
    by_change = {id(result.change): result for result in results}
    halted = {halt.account: str(halt) for halt in halts}
    changes: list[dict[str, Any]] = []
    counts = dict.fromkeys(OUTCOMES, 0)
    applied = {action.value: 0 for action in ACTION_ORDER}
    for change in plan.changes:
        result = by_change.get(id(change))
        outcome = _outcome(result)
        counts[outcome] += 1
        if outcome == "ok":
            applied[change.action.value] += 1
        error = result.error if result is not None else halted.get(change.account)
        entry = _change(change, outcome, error)
        if result is not None and result.secret is not None:
            entry["shared_secret"] = result.secret.to_dict()  # what became of it, never it
        changes.append(entry)
    lost = any(result.secret_lost for result in results)
    if not plan.has_changes:
        status = "no_changes"
    else:
        status = "applied" if counts["ok"] == len(plan.changes) and not lost else "failed"
    return {
        "format_version": FORMAT_VERSION,
        "status": status,
        "summary": {action.value: n for action, n in plan.counts().items()},
        "applied": applied,
        "counts": counts,
        "changes": changes,
    }


def _change(change: Change, outcome: str, error: str | None) -> dict[str, Any]:
    return {
        "action": change.action.value,
        "account": change.account,
        "service": change.service,
        "family": change.family.name,
        "outcome": outcome,
        "error": error,
    }


def render_apply_json(
    plan: Plan,
    results: Sequence[ChangeResult],
    out: TextIO,
    *,
    halts: Sequence[AccountHalt] = (),
) -> None:
    out.write(escape.json_text(apply_result(plan, results, halts), indent=2) + "\n")
