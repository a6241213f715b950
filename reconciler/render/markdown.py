"""``--output markdown``: a plan for pull-request comments and CI job summaries.

Reviewers read it top down, and a large plan must still fit in one comment:

1. the summary line and a table of counts per account (accounts with changes);
2. the configuration's validation warnings;
3. one collapsible ``<details>`` section per account, a table of its changes;
4. the notes.

GitHub refuses a comment over 65,536 characters, so the document stays within
:data:`LIMIT` (room left for a header a pipeline adds): what does not fit is left out
whole (a change with all its rows, a warning, a note) and a last line says how much was
left out and where the full plan is. Counts in the summary always cover the whole plan.

Values are code spans (:func:`escape.markdown`), names and notes escaped prose
(:func:`escape.markdown_text`), the section titles HTML text (:func:`escape.html`): a
``|``, a newline, a backtick or a ``<`` in a value can neither break a table nor end
its code span or its section.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from typing import TextIO

from reconciler.core import escape
from reconciler.core.errors import Problem
from reconciler.engine.plan import ACTION_ORDER, Action, Change, Plan
from reconciler.listeners.model import CheckReport

LIMIT = 60_000  # characters (UTF-16 code units, as GitHub counts); its cap is 65,536
MAX_ACCOUNT_ROWS = 100  # rows of the summary table; the rest are added up in one row
MAX_WARNINGS = 50  # the rest are counted: `tscallbacks validate` lists them all
OPEN_UP_TO = 20  # sections start open when the whole plan has at most this many changes

_ICON = {Action.CREATE: "create", Action.UPDATE: "update", Action.DELETE: "**delete**"}
_VERB = {Action.CREATE: "to create", Action.UPDATE: "to update", Action.DELETE: "to delete"}
_CHANGES_HEAD = "| action | service | field | before | after |\n| --- | --- | --- | --- | --- |\n"
_CLOSE = "\n</details>\n"


def size(text: str) -> int:
    """The length GitHub measures: UTF-16 code units (an emoji counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def _cell(text: str | None, sensitive: bool) -> str:
    if text is None:
        return ""
    # A sensitive field holds a marker such as "(sensitive)", shown as words.
    return escape.markdown_text(text) if sensitive else escape.markdown(text)


def change_rows(change: Change) -> str:
    """One change as table rows: its action and service on the first, one field a row."""
    rows: list[str] = []
    action = _ICON[change.action] + (" (protected)" if change.protected else "")
    for i, field in enumerate(change.fields or (None,)):
        lead = f"{action} | {escape.markdown_text(change.service)}" if i == 0 else " | "
        if field is None:
            rows.append(f"| {lead} | | | |\n")
            continue
        rows.append(
            f"| {lead} | {field.name} | {_cell(field.before, field.sensitive)} "
            f"| {_cell(field.after, field.sensitive)} |\n"
        )
    if change.reason:  # why a delete happens
        rows.append(f"|  |  | why | {escape.markdown_text(change.reason)} |  |\n")
    return "".join(rows)


def _counts(changes: Iterable[Change]) -> dict[Action, int]:
    counted = dict.fromkeys(ACTION_ORDER, 0)
    for change in changes:
        counted[change.action] += 1
    return counted


def _by_account(plan: Plan) -> dict[str, list[Change]]:
    groups: dict[str, list[Change]] = {}
    for change in plan.changes:
        groups.setdefault(change.account, []).append(change)
    return groups


def _summary_table(groups: dict[str, list[Change]]) -> str:
    rows = ["| account | create | update | delete |\n| --- | ---: | ---: | ---: |\n"]
    names = list(groups)
    for account in names[:MAX_ACCOUNT_ROWS]:
        n = _counts(groups[account])
        rows.append(f"| {escape.markdown(account)} | " + " | ".join(map(str, n.values())) + " |\n")
    rest = names[MAX_ACCOUNT_ROWS:]
    if rest:
        n = _counts(c for account in rest for c in groups[account])
        rows.append(f"| … {len(rest)} more accounts | " + " | ".join(map(str, n.values())) + " |\n")
    if len(names) > 1:
        n = _counts(c for changes in groups.values() for c in changes)
        rows.append(
            f"| **all {len(names)} accounts** | " + " | ".join(map(str, n.values())) + " |\n"
        )
    return "".join(rows)


def problem_line(problem: Problem, *, severity: bool = False) -> str:
    """One problem as a Markdown list item (location and path as code, message as prose);
    ``severity`` starts it with "warning" or "**error**" (the listener check's problems)."""
    where = problem.location
    spot = f"{where.path}:{max(where.line, 1)}:{max(where.column, 1)}" if where else "<config>"
    kind = ("warning " if problem.warning else "**error** ") if severity else ""
    # json_path is display text already (the escape.text form): as a code span it is
    # escaped once more, which shows a backslash in it doubled (keys that pass the
    # configuration checks have none).
    return (
        f"- {kind}{escape.markdown(spot)} {escape.markdown(problem.json_path)}: "
        f"{escape.markdown_text(problem.message)}\n"
    )


def _section_open(account: str, changes: Sequence[Change], *, open_: bool) -> str:
    n = _counts(changes)
    counts = ", ".join(f"{n[a]} {_VERB[a]}" for a in ACTION_ORDER if n[a])
    attribute = " open" if open_ else ""
    return (
        f"\n<details{attribute}><summary>{escape.html(account)}: {counts}</summary>\n\n"
        + _CHANGES_HEAD
    )


class _Budget:
    """The document so far, and what was left out of it to stay within the limit."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.used = 0
        self.limit = limit
        self.left_out_changes: dict[str, int] = {}
        self.left_out_warnings = 0
        self.left_out_notes = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.used += size(text)

    def fits(self, text: str, reserve: int) -> bool:
        return self.used + size(text) + reserve <= self.limit


def _tail(left_out: dict[str, int], warnings: int, notes: int, full_plan: str | None) -> str:
    """The last line of a shortened document: what is missing, and where it is."""
    missing: list[str] = []
    if left_out:
        changes = sum(left_out.values())
        missing.append(
            f"{changes} more {'change' if changes == 1 else 'changes'} in {len(left_out)} "
            f"{'account' if len(left_out) == 1 else 'accounts'}"
        )
    if warnings:
        missing.append(f"{warnings} more {'warning' if warnings == 1 else 'warnings'}")
    if notes:
        missing.append(f"{notes} more {'note' if notes == 1 else 'notes'}")
    if full_plan is not None:
        command = f"tscallbacks show {shlex.quote(full_plan)}"
        where = escape.markdown(command if len(command) <= 300 else "tscallbacks show PLANFILE")
        see = f"see the full plan: {where} (or the job log)"
    else:
        see = "see the full plan in the job log (`tscallbacks plan`)"
    return f"\n> **Shortened to fit a comment:** … {' and '.join(missing)} not shown; {see}.\n"


def render_markdown(
    plan: Plan,
    out: TextIO,
    *,
    limit: int = LIMIT,
    full_plan: str | None = None,
    listeners: CheckReport | None = None,
) -> None:
    """Write ``plan`` as Markdown of at most ``limit`` characters. ``full_plan`` names
    the saved plan file, for the pointer a shortened document ends with; ``listeners``
    (``plan --check-listeners``) adds the listener check's summary and problems."""
    out.write(markdown_document(plan, limit=limit, full_plan=full_plan, listeners=listeners))


def _listener_section(doc: _Budget, report: CheckReport, reserve: int) -> None:
    """The check's summary, then its problems while they fit (the rest counted)."""
    doc.add(f"\n### Listener check\n\n**{report.summary_line()}**\n\n")
    problems = report.problems()
    more = "- … {} more listener problems not shown; see `tscallbacks check`\n"
    room = reserve + size(more.format(len(problems)))
    for i, problem in enumerate(problems):
        line = problem_line(problem, severity=True)
        if not doc.fits(line, room):
            doc.add(more.format(len(problems) - i))
            return
        doc.add(line)


def markdown_document(
    plan: Plan,
    *,
    limit: int = LIMIT,
    full_plan: str | None = None,
    listeners: CheckReport | None = None,
) -> str:
    groups = _by_account(plan)
    doc = _Budget(limit)
    doc.add("## tscallbacks plan\n\n")
    if plan.reading:  # which families were read (absent for version-1 files)
        doc.add("".join(f"{escape.markdown_text(line)}.  \n" for line in plan.reading) + "\n")
    if not plan.has_changes:
        doc.add("No changes. The callback registrations match the configuration.\n")
    else:
        doc.add(f"**{plan.summary_line()}**\n\n")
        doc.add(_summary_table(groups))
        for brake in plan.brakes:
            verdict = (
                f"{escape.markdown(brake.flag)} lets this plan through"
                if brake.released
                else f"apply refuses this plan without {escape.markdown(brake.flag)}"
            )
            doc.add(f"\n**Safety:** {verdict}: {escape.markdown_text(brake.message)}.\n")
    # Room for the longest tail this plan could need (every count at its largest).
    reserve = size(_CLOSE) + size(
        _tail(
            {account: len(changes) for account, changes in groups.items()},
            len(plan.warnings),
            len(plan.notes),
            full_plan,
        )
    )
    if plan.warnings:
        doc.add("\n### Warnings\n\n")
        for i, warning in enumerate(plan.warnings):
            line = problem_line(warning)
            if i >= MAX_WARNINGS or not doc.fits(line, reserve):
                doc.left_out_warnings = len(plan.warnings) - i
                break
            doc.add(line)
    if listeners is not None:
        _listener_section(doc, listeners, reserve)
    opened = plan.has_changes and len(plan.changes) <= OPEN_UP_TO
    for account, changes in groups.items():
        head = _section_open(account, changes, open_=opened)
        shown = 0
        for change in changes:
            rows = change_rows(change)
            if doc.left_out_changes or not doc.fits((head if not shown else "") + rows, reserve):
                break
            if not shown:
                doc.add(head)
            doc.add(rows)
            shown += 1
        if shown:
            doc.add(_CLOSE)
        if shown < len(changes):
            doc.left_out_changes[account] = len(changes) - shown
    for i, note in enumerate(plan.notes):
        line = f"\n> Note: {escape.markdown_text(note)}\n"
        if not doc.fits(line, reserve):
            doc.left_out_notes = len(plan.notes) - i
            break
        doc.add(line)
    if doc.left_out_changes or doc.left_out_warnings or doc.left_out_notes:
        doc.add(_tail(doc.left_out_changes, doc.left_out_warnings, doc.left_out_notes, full_plan))
    return "".join(doc.parts)
