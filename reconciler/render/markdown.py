"""``--output markdown``: a plan for pull-request comments.

Values are code spans (:func:`escape.markdown`), names and notes escaped prose
(:func:`escape.markdown_text`): a ``|``, a newline or a backtick in a value can neither
break the table nor end its code span.
"""

from __future__ import annotations

from typing import TextIO

from reconciler.core import escape
from reconciler.engine.plan import Action, Plan

_ICON = {Action.CREATE: "create", Action.UPDATE: "update", Action.DELETE: "**delete**"}


def _cell(text: str | None, sensitive: bool) -> str:
    if text is None:
        return ""
    # A sensitive field holds a marker such as "(sensitive)", shown as words.
    return escape.markdown_text(text) if sensitive else escape.markdown(text)


def render_markdown(plan: Plan, out: TextIO) -> None:
    out.write("## tscallbacks plan\n\n")
    if not plan.has_changes:
        out.write("No changes. The callback registrations match the configuration.\n")
    else:
        out.write("| action | account | service | field | before | after |\n")
        out.write("| --- | --- | --- | --- | --- | --- |\n")
        for change in plan.changes:
            for i, field in enumerate(change.fields):
                protected = " (protected)" if change.protected else ""
                lead = (
                    f"{_ICON[change.action]}{protected} | {escape.markdown(change.account)} | "
                    f"{escape.markdown_text(change.service)}"
                    if i == 0
                    else " | | "
                )
                out.write(
                    f"| {lead} | {field.name} | {_cell(field.before, field.sensitive)} "
                    f"| {_cell(field.after, field.sensitive)} |\n"
                )
        out.write(f"\n**{plan.summary_line()}**\n")
        reasons = [c for c in plan.changes if c.reason]
        if reasons:
            out.write("\n")
        for change in reasons:
            out.write(
                f"- why delete {escape.markdown(change.account)} / "
                f"{escape.markdown_text(change.service)}: "
                f"{escape.markdown_text(change.reason or '')}\n"
            )
        for brake in plan.brakes:
            verdict = (
                f"{escape.markdown(brake.flag)} lets this plan through"
                if brake.released
                else f"apply refuses this plan without {escape.markdown(brake.flag)}"
            )
            out.write(f"\n**Safety:** {verdict}: {escape.markdown_text(brake.message)}.\n")
    for note in plan.notes:
        out.write(f"\n> Note: {escape.markdown_text(note)}\n")
