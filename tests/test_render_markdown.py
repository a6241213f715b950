"""The Markdown plan's layout for pull-request comments, and its size cap."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest

from reconciler.core import escape
from reconciler.core.errors import Location, Problem
from reconciler.engine.plan import Plan
from reconciler.engine.planner import make_plan
from reconciler.render.markdown import LIMIT, MAX_WARNINGS, render_markdown, size
from tests.helpers import current, desired, reg
from tests.test_escape import _cells, _code_span
from tests.test_render import TABLE_BREAK

GITHUB_COMMENT_LIMIT = 65_536
SERVICES = (
    "AlertService", "CarrierService", "DevicePRLInformation", "DeviceProfileService",
    "DeviceService", "DeviceSuspensionStatus", "DeviceUsage", "EnhancedConnectivityService",
    "ExternalProvisioningChanges", "PromoChanges",
)  # fmt: skip
TAIL = re.compile(
    r"… (\d+) more changes? in (\d+) accounts? (?:and .* )?not shown; see the full plan: (.*)\.$"
)


def big_plan(accounts: int, per_account: int, *, url: str = "") -> Plan:
    """``accounts * per_account`` creates with long URLs (and one hostile one each)."""
    names = [f"0252{n:06d}-{n % 97:05d}" for n in range(accounts)]
    want = {
        name: {
            service: reg(url or f"https://hooks.example.com/{name}/{service}/" + "x" * 60)
            for service in SERVICES[:per_account]
        }
        for name in names
    }
    return make_plan(desired(want), current({}))


def render(plan: Plan, **kwargs: object) -> str:
    out = io.StringIO()
    render_markdown(plan, out, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def sections(text: str) -> dict[str, list[str]]:
    """account -> the change rows shown in its section (first rows and field rows)."""
    found: dict[str, list[str]] = {}
    for block in re.findall(r"<details[^>]*><summary>(.*?)</details>", text, re.S):
        title, _, body = block.partition("</summary>")
        rows = [line for line in body.splitlines() if line.startswith("|")][2:]
        found[title.split(":")[0]] = rows
    return found


def first_rows(rows: list[str]) -> int:
    return sum(1 for row in rows if _cells(row)[0])


@pytest.mark.parametrize(("accounts", "per_account"), [(200, 10), (2000, 1)])
def test_a_2000_change_plan_fits_a_comment_and_says_what_is_missing(
    accounts: int, per_account: int
) -> None:
    plan = big_plan(accounts, per_account)
    assert len(plan.changes) == 2000
    text = render(plan, full_plan="plan.json")
    assert size(text) <= LIMIT < GITHUB_COMMENT_LIMIT
    assert "**Plan: 2000 to create, 0 to update, 0 to delete.**" in text

    shown = sections(text)
    shown_changes = sum(first_rows(rows) for rows in shown.values())
    tail = TAIL.search(text.rstrip("\n").splitlines()[-1])
    assert tail is not None, text[-500:]
    left_out, left_accounts = int(tail.group(1)), int(tail.group(2))
    assert tail.group(3) == "`tscallbacks show plan.json` (or the job log)"
    assert shown_changes > 0 and shown_changes + left_out == 2000
    accounts = {c.account for c in plan.changes}
    cut = [a for a in accounts if first_rows(shown.get(a, [])) < per_account]
    assert left_accounts == len(cut)
    # the shown part is a prefix of the plan, every section complete as HTML
    assert list(shown) == sorted(shown) == sorted({c.account for c in plan.changes})[: len(shown)]
    assert text.count("<details") == text.count("</details>") == len(shown)


def test_summary_table_comes_first_and_adds_up_the_rest() -> None:
    plan = big_plan(2000, 1)
    text = render(plan)
    table_end = text.index("<details")
    summary = [line for line in text[:table_end].splitlines() if line.startswith("|")]
    assert summary[0] == "| account | create | update | delete |"
    assert len(summary) == 2 + 100 + 2  # head, 100 accounts, the rest, the total
    assert summary[-2] == "| … 1900 more accounts | 1900 | 0 | 0 |"
    assert summary[-1] == "| **all 2000 accounts** | 2000 | 0 | 0 |"
    assert "see the full plan in the job log (`tscallbacks plan`)" in text


def test_small_plan_is_whole_and_open() -> None:
    plan = big_plan(2, 3)
    text = render(plan)
    assert "Shortened" not in text and "not shown" not in text
    assert text.count("<details open><summary>") == 2
    assert sum(first_rows(rows) for rows in sections(text).values()) == 6


def test_sections_are_collapsed_in_a_large_plan() -> None:
    text = render(big_plan(3, 10))
    assert text.count("<details><summary>") == 3 and "<details open>" not in text


def test_hostile_values_in_a_shortened_plan_keep_every_table() -> None:
    plan = big_plan(400, 5, url=TABLE_BREAK + "`" * 3 + "|" * 40)
    text = render(plan, full_plan="my `plan` | x.json")
    assert size(text) <= LIMIT
    assert all(line.isprintable() for line in text.splitlines())
    for rows in sections(text).values():
        for row in rows:
            cells = _cells(row)
            assert len(cells) == 5, row
            assert _code_span(cells[4]) == escape.text(TABLE_BREAK + "`" * 3 + "|" * 40)
    last = text.rstrip("\n").splitlines()[-1]
    span = last.split("see the full plan: ")[1].removesuffix(" (or the job log).")
    assert _code_span(span) == "tscallbacks show 'my `plan` | x.json'"


def test_a_smaller_limit_is_kept() -> None:
    text = render(big_plan(50, 10), limit=5_000, full_plan="p.json")
    assert size(text) <= 5_000
    assert TAIL.search(text.rstrip("\n").splitlines()[-1])


def test_many_warnings_are_capped_and_counted() -> None:
    warnings = tuple(
        Problem(Location("c.yaml", n + 1, 7), f"$.accounts.a{n}", "plain http", warning=True)
        for n in range(MAX_WARNINGS + 20)
    )
    text = render(replace(big_plan(1, 1), warnings=warnings))
    assert text.count("- `c.yaml:") == MAX_WARNINGS
    assert "… 20 more warnings not shown" in text
    # the warnings come before the changes, after the summary
    assert text.index("**Plan:") < text.index("### Warnings") < text.index("<details")


def test_account_titles_are_html_escaped() -> None:
    want = {"a<b>&c": {"DeviceUsage": reg("https://h.example.com/u")}}
    plan = make_plan(desired(want), current({}))
    text = render(plan)
    assert "<summary>a&lt;b&gt;&amp;c: 1 to create</summary>" in text


def test_size_counts_as_github_does() -> None:
    assert size("abc") == 3 and size("\U0001f600") == 2 and size("é") == 1
