"""``--output json``: one JSON document per the contract (format_version, changes, summary)."""

from __future__ import annotations

import json
from typing import TextIO

from reconciler.engine.plan import Plan


def render_json(plan: Plan, out: TextIO) -> None:
    json.dump(plan.to_dict(), out, indent=2, sort_keys=False)
    out.write("\n")
