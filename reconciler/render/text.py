"""Terraform-like text: ``+ create``, ``~ update`` with old -> new, ``- destroy``, summary.

Every value (names, URLs, usernames, notes) goes through :func:`escape.text` here, so a
newline or an escape sequence in it is shown, never obeyed; only our colours are codes.
"""

from __future__ import annotations

from typing import TextIO

from reconciler.core import escape
from reconciler.engine.plan import Action, Brake, Change, FieldChange, Plan

_SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-"}
_VERB = {Action.CREATE: "create", Action.UPDATE: "update", Action.DELETE: "destroy"}
_COLOR = {Action.CREATE: "\033[32m", Action.UPDATE: "\033[33m", Action.DELETE: "\033[31m"}
_BOLD = "\033[1m"
_RESET = "\033[0m"


def _value(text: str | None, sensitive: bool) -> str:
    if text is None:
        return "(none)"
    # A sensitive field holds a marker such as "(sensitive)"; every other value is quoted,
    # so a username spelled "(sensitive)" cannot pass for one.
    return escape.text(text) if sensitive else f'"{escape.text(text)}"'


def _field_line(action: Action, field: FieldChange, width: int) -> str:
    name = field.name.ljust(width)
    before = _value(field.before, field.sensitive)
    after = _value(field.after, field.sensitive)
    if action is Action.CREATE:
        return f"+ {name} = {after}"
    if action is Action.DELETE:
        return f"- {name} = {before}"
    return f"~ {name} = {before} -> {after}"


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def render_change(change: Change, out: TextIO, *, color: bool = False) -> None:
    key = f"{escape.text(change.account)}/{escape.text(change.service)}"
    head = f"{_SYMBOL[change.action]} {_VERB[change.action]} {key}"
    family = f" ({change.family.name})"
    mark = " [protected]" if change.protected else ""
    out.write("  " + _paint(head, _COLOR[change.action], color) + family + mark + "\n")
    width = max((len(f.name) for f in change.fields), default=0)
    for field in change.fields:
        line = _field_line(change.action, field, width)
        out.write("      " + _paint(line[:1], _COLOR[change.action], color) + line[1:] + "\n")
    if change.reason:
        out.write(f"      # why: {escape.text(change.reason)}\n")


def brake_line(brake: Brake) -> str:
    """One line saying what a brake means for apply (escaped for a terminal)."""
    if brake.released:
        return f"Safety: {brake.flag} lets this plan through: {escape.text(brake.message)}."
    return f"Safety: apply refuses this plan without {brake.flag}: {escape.text(brake.message)}."


def render_text(plan: Plan, out: TextIO, *, color: bool = False) -> None:
    for line in plan.reading:  # which families were read (absent for version-1 files)
        out.write(f"{escape.text(line)}.\n")
    if plan.reading:
        out.write("\n")
    if not plan.has_changes:
        out.write(
            _paint("No changes.", _BOLD, color)
            + " The callback registrations match the configuration.\n"
        )
    else:
        out.write("tscallbacks will perform the following actions:\n\n")
        for change in plan.changes:
            render_change(change, out, color=color)
            out.write("\n")
    if plan.notes:
        if not plan.has_changes:
            out.write("\n")
        for note in plan.notes:
            out.write(f"Note: {escape.text(note)}\n")
        if plan.has_changes:
            out.write("\n")
    if plan.has_changes:
        out.write(_paint(plan.summary_line(), _BOLD, color) + "\n")
        for brake in plan.brakes:
            out.write(brake_line(brake) + "\n")
