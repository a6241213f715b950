"""``--output json``: one JSON document per the contract (format_version, changes, summary)."""

from __future__ import annotations

from typing import TextIO

from reconciler.core import escape
from reconciler.engine.plan import Plan
from reconciler.listeners.model import CheckReport
from reconciler.render.listeners import report_view


def render_json(plan: Plan, out: TextIO, *, listeners: CheckReport | None = None) -> None:
    """``listeners`` (``plan --check-listeners``) adds the check as ``listeners``."""
    document = plan.to_dict()
    if listeners is not None:
        document["listeners"] = report_view(listeners)
    out.write(escape.json_text(document, indent=2) + "\n")
