"""``--output markdown``: a plan for pull-request comments."""

from __future__ import annotations

from typing import TextIO

from reconciler.engine.plan import Action, Plan

_ICON = {Action.CREATE: "create", Action.UPDATE: "update", Action.DELETE: "**delete**"}


def _cell(text: str | None) -> str:
    if text is None:
        return ""
    escaped = text.replace("|", "\\|").replace("`", "'")
    return escaped if text.startswith("(") else f"`{escaped}`"


def render_markdown(plan: Plan, out: TextIO) -> None:
    out.write("## tscallbacks plan\n\n")
    if not plan.has_changes:
        out.write("No changes. The callback registrations match the configuration.\n")
    else:
        out.write("| action | account | service | field | before | after |\n")
        out.write("| --- | --- | --- | --- | --- | --- |\n")
        for change in plan.changes:
            for i, field in enumerate(change.fields):
                lead = (
                    f"{_ICON[change.action]} | `{change.account}` | {change.service}"
                    if i == 0
                    else " | | "
                )
                out.write(
                    f"| {lead} | {field.name} | {_cell(field.before)} | {_cell(field.after)} |\n"
                )
        out.write(f"\n**{plan.summary_line()}**\n")
    for note in plan.notes:
        out.write(f"\n> Note: {note}\n")
