"""The listener check's report: text, JSON and Markdown, each escaped for its format.

Used by ``tscallbacks check`` and, as a section, by ``plan --check-listeners``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from reconciler.core import escape
from reconciler.core.errors import Problem
from reconciler.engine.plan import warning_view
from reconciler.listeners.model import STEP_NAMES, CheckReport, Outcome, UrlReport
from reconciler.render.markdown import problem_line

FORMAT_VERSION = 1
_MARK = {Outcome.OK: "ok", Outcome.WARNING: "warning", Outcome.ERROR: "FAIL", Outcome.SKIPPED: "-"}
# --color: green, yellow, red, dim; only the marks (our own words) are painted.
_PAINT = {
    Outcome.OK: "\033[32m",
    Outcome.WARNING: "\033[33m",
    Outcome.ERROR: "\033[31m",
    Outcome.SKIPPED: "\033[2m",
}
_BOLD, _RESET = "\033[1m", "\033[0m"
_MD_MARK = {
    Outcome.OK: "✅ ok",
    Outcome.WARNING: "⚠️ warning",
    Outcome.ERROR: "❌ **fail**",
    Outcome.SKIPPED: "skipped",
}


def _used_by(report: UrlReport) -> str:
    keys = report.target.registrations
    shown = ", ".join(str(key) for key in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def render_text(report: CheckReport, out: TextIO, *, color: bool = False) -> None:
    """Per URL each step's outcome, then one located line per problem, then the summary;
    ``color`` (``--color``) paints the outcome marks and the summary."""
    for url in report.urls:
        out.write(f"{escape.text(url.target.url)}  ({escape.text(_used_by(url))})\n")
        for step in url.steps:
            mark = _paint(f"{_MARK[step.outcome]:<8}", _PAINT[step.outcome], color)
            out.write(f"  {mark} {step.name:<5} {escape.text(step.detail)}\n")
        out.write("\n")
    problems = report.problems()
    for problem in problems:
        out.write(f"{problem}\n")
    if problems:
        out.write("\n")
    out.write(_paint(report.summary_line(), _BOLD, color) + "\n")


def finished_line(report: UrlReport) -> str:
    """One URL's outcome as it ends (``-vv``), escaped: ``URL: failed (tls)``."""
    problems = [step.name for step in report.steps if step.is_problem]
    words = {Outcome.OK: "passed", Outcome.WARNING: "passed with warnings"}
    said = words.get(report.outcome, "failed")
    return (
        escape.text(report.target.url)
        + f": {said}"
        + (f" ({', '.join(problems)})" if problems else "")
    )


def problem_view(problem: Problem) -> dict[str, Any]:
    """A problem as the plan's warnings are shown in JSON, with its ``severity``."""
    return {**warning_view(problem), "severity": "warning" if problem.warning else "error"}


def report_view(report: CheckReport) -> dict[str, Any]:
    return {
        "urls": [
            {
                "url": url.target.url,
                "registrations": [
                    {"account": key.account, "service": key.service}
                    for key in url.target.registrations
                ],
                "credentials": url.target.has_credentials,
                "outcome": url.outcome.value,
                "steps": [
                    {"step": s.name, "outcome": s.outcome.value, "detail": s.detail}
                    for s in url.steps
                ],
            }
            for url in report.urls
        ],
        "problems": [problem_view(p) for p in report.problems()],
        "summary": {
            "urls": len(report.urls),
            "passed": report.count(Outcome.OK),
            "warnings": report.count(Outcome.WARNING),
            "failed": report.count(Outcome.ERROR),
        },
    }


def render_json(report: CheckReport, out: TextIO) -> None:
    document = {"format_version": FORMAT_VERSION, **report_view(report)}
    out.write(escape.json_text(document, indent=2) + "\n")


def render_markdown(report: CheckReport, out: TextIO) -> None:
    out.write(f"## tscallbacks listener check\n\n**{report.summary_line()}**\n\n")
    if report.urls:
        out.write("| URL | " + " | ".join(STEP_NAMES) + " |\n")
        out.write("| --- |" + " --- |" * len(STEP_NAMES) + "\n")
        for url in report.urls:
            cells = " | ".join(_MD_MARK[s.outcome] for s in url.steps)
            out.write(f"| {escape.markdown(url.target.url)} | {cells} |\n")
    problems = report.problems()
    if problems:
        out.write("\n### Problems\n\n")
        for problem in problems:
            out.write(problem_line(problem, severity=True))
    if report.urls:
        out.write("\n<details><summary>Every step</summary>\n\n")
        out.write("| URL | step | outcome | detail |\n| --- | --- | --- | --- |\n")
        for url in report.urls:
            for step in url.steps:
                out.write(
                    f"| {escape.markdown(url.target.url)} | {step.name} | "
                    f"{_MD_MARK[step.outcome]} | {escape.markdown_text(step.detail)} |\n"
                )
        out.write("\n</details>\n")


RENDERERS: dict[str, Callable[[CheckReport, TextIO], None]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}
