"""``--output json``: one JSON document per the contract (format_version, changes, summary)."""

from __future__ import annotations

from typing import TextIO

from reconciler.core import escape
from reconciler.engine.plan import Plan


def render_json(plan: Plan, out: TextIO) -> None:
    out.write(escape.json_text(plan.to_dict(), indent=2) + "\n")
