"""Renderer golden files. Regenerate with UPDATE_GOLDEN=1 after an intended change."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.core import escape
from reconciler.core.errors import Location, Problem
from reconciler.engine.plan import Plan
from reconciler.engine.planner import make_plan
from reconciler.engine.safety import SafetyPolicy, assessed
from reconciler.render import RENDERERS, renderer
from tests.helpers import M2M_SERVICES, current, desired, reg

GOLDEN = Path(__file__).parent / "golden"
SECRETS = ("n3w-sms-secret", "0ld-sms-secret", "unreturned-secret")


WARNINGS = (
    Problem(
        Location("callbacks.yaml", 7, 14),
        "$.accounts['0252012345-00001'].callbacks.DeviceUsage.url",
        "plain http: callbacks carry device data; use https",
        warning=True,
    ),
    Problem(
        Location("config/b.yaml", 0, 0),  # a whole-file finding is shown at 1:1
        "$",
        "a *literal* password <b>here</b> | `x`",
        warning=True,
    ),
)


def sample_plan() -> Plan:
    """The golden plan, with the configuration's warnings attached as `plan` does."""
    return replace(_sample_changes(), warnings=WARNINGS)


def _sample_changes() -> Plan:
    a, b = "0252012345-00001", "TestAccount-2"
    return make_plan(
        desired(
            {
                a: {
                    "DeviceUsage": reg("https://hooks.example.com/usage"),
                    "SMSDeliveryConfirmation": reg(
                        "https://hooks.example.com:9001/sms", "thingspace", SECRETS[0]
                    ),
                    "Fota": reg("https://hooks.example.com/fota"),
                    "QoS": reg("https://hooks.example.com/qos", None, SECRETS[2]),
                },
                b: {"AlertService": reg("https://hooks.example.com/alerts")},
            }
        ),
        current(
            {
                a: {
                    "SMSDeliveryConfirmation": reg(
                        "https://hooks.example.com/sms-old", "thingspace", SECRETS[1]
                    ),
                    "CarrierService": reg("https://hooks.example.com/carrier", "ops"),
                    "QoS": reg("https://hooks.example.com/qos", known=False),
                },
                b: {"AlertService": reg("https://hooks.example.com/alerts")},
            }
        ),
    )


def render(name: str, plan: Plan, *, color: bool = False) -> str:
    out = io.StringIO()
    renderer(name, color=color)(plan, out)
    return out.getvalue()


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_golden(name: str) -> None:
    suffix = {"text": "txt", "json": "json", "markdown": "md"}[name]
    check_golden(f"plan.{suffix}", render(name, sample_plan()))


def brakes_plan() -> Plan:
    """A protected update and 4 deletes of 10 managed: protect, the threshold and
    --max-deletes 2 all fire."""
    services = list(M2M_SERVICES[:10])
    live = {s: reg(f"https://hooks.example.com/{s}") for s in services}
    kept = {s: live[s] for s in services[:5]}
    kept["DeviceUsage"] = replace(reg("https://hooks.example.com/moved"), protect=True)
    return make_plan(
        desired({"fleet-1": kept}),
        current({"fleet-1": live}),
        policy=SafetyPolicy(max_deletes=2),
    )


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_golden_brakes(name: str) -> None:
    suffix = {"text": "txt", "json": "json", "markdown": "md"}[name]
    check_golden(f"plan-brakes.{suffix}", render(name, brakes_plan()))


def test_released_brakes_say_so() -> None:
    plan = assessed(brakes_plan(), SafetyPolicy(allow_protected=True, force=True))
    text = render("text", plan)
    assert "Safety: --force lets this plan through: 4 of 10 managed" in text
    assert "Safety: --allow-protected lets this plan through: 1 change touches" in text
    markdown = render("markdown", plan)
    assert "**Safety:** `--force` lets this plan through: 4 of 10 managed" in markdown
    assert json.loads(render("json", plan))["safety"]["apply_refused"] is False


def test_golden_no_changes() -> None:
    plan = make_plan(desired({"a": {}}), current({}))
    check_golden("plan-empty.txt", render("text", plan))


def test_colour_only_when_asked() -> None:
    plain = render("text", sample_plan())
    painted = render("text", sample_plan(), color=True)
    assert "\033[" not in plain
    assert "\033[32m+ create" in painted and "\033[31m- destroy" in painted
    assert (
        painted.replace("\033[32m", "")
        .replace("\033[33m", "")
        .replace("\033[31m", "")
        .replace("\033[1m", "")
        .replace("\033[0m", "")
        == plain
    )


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_no_secret_in_any_output(name: str) -> None:
    text = render(name, sample_plan(), color=True)
    for secret in SECRETS:
        assert secret not in text
    assert "(sensitive)" in text


def test_json_contract_shape() -> None:
    doc = json.loads(render("json", sample_plan()))
    assert doc["format_version"] == "1"
    assert doc["summary"] == {"create": 2, "update": 1, "delete": 1}
    for change in doc["changes"]:
        assert set(change) >= {"action", "account", "service", "before", "after"}
        assert change["action"] in ("create", "update", "delete")
    deleted = next(c for c in doc["changes"] if c["action"] == "delete")
    assert deleted["after"] is None and deleted["before"]["url"].endswith("/carrier")


# Values a hostile or careless remote side (or an old configuration) can carry.
FORGED_SUMMARY = "bob\n\nPlan: 0 to create, 0 to update, 0 to delete."
CLEAR_SCREEN = "https://hooks.example.com/\x1b[2J\x1b[31mall good"
TABLE_BREAK = "https://hooks.example.com/a\n| create | `x` | y | url | | `z` |"
BIDI = "https://hooks.example.com/\u202egpj.exe"
ZERO_WIDTH = "https://hooks.exa\u200bmple.com/"
BACKTICKS = "https://hooks.example.com/``a`|b"
EVIL_SERVICE = "Evil\x1b]0;title\x07\nService"


def hostile_plan() -> Plan:
    a = "0252012345-00001"
    return make_plan(
        desired(
            {
                a: {
                    "DeviceUsage": reg(CLEAR_SCREEN, FORGED_SUMMARY),
                    "AlertService": reg(BIDI),
                    "CarrierService": reg(BACKTICKS),
                },
                "kept": {},
            },
        ),
        current(
            {
                a: {
                    "DeviceUsage": reg(TABLE_BREAK, "(sensitive)"),
                    "AlertService": reg(ZERO_WIDTH),
                    EVIL_SERVICE: reg("https://hooks.example.com/evil"),
                },
            }
        ),
    )


HOSTILE_VALUES = (FORGED_SUMMARY, CLEAR_SCREEN, TABLE_BREAK, BIDI, ZERO_WIDTH, EVIL_SERVICE)


@pytest.mark.parametrize("color", [False, True])
def test_text_shows_hostile_values_escaped(color: bool) -> None:
    text = render("text", hostile_plan(), color=color)
    ours = ("\033[32m", "\033[33m", "\033[31m", "\033[1m", "\033[0m")
    plain = text
    for code in ours:
        plain = plain.replace(code, "")
    assert all(line.isprintable() for line in plain.splitlines())
    # exactly one summary line, ours, at the end
    assert [line for line in plain.splitlines() if line.lstrip().startswith("Plan:")] == [
        "Plan: 1 to create, 2 to update, 1 to delete."
    ]
    assert '"bob\\n\\nPlan: 0 to create, 0 to update, 0 to delete."' in plain
    assert "\\x1b[2J\\x1b[31mall good" in plain
    assert "\\u202egpj.exe" in plain and "exa\\u200bmple" in plain
    assert "destroy 0252012345-00001/Evil\\x1b]0;title\\x07\\nService" in plain
    # a value that looks like a marker is quoted like any other value
    assert '"(sensitive)"' in plain


def test_markdown_table_survives_hostile_values() -> None:
    from tests.test_escape import _cells, _code_span

    text = render("markdown", hostile_plan())
    assert all(line.isprintable() for line in text.splitlines())
    rows = [line for line in text.splitlines() if line.startswith("|")]
    plan = hostile_plan()
    # the summary table (head, 1 account) and the account's table (head, one row a field,
    # and a "why" row under each delete)
    reasons = sum(1 for c in plan.changes if c.reason)
    assert len(rows) == 2 + 1 + 2 + sum(len(c.fields) for c in plan.changes) + reasons
    change_rows = rows[5:]
    shown: set[str] = set()
    for row in change_rows:
        cells = _cells(row)
        assert len(cells) == 5, row
        shown.update(_code_span(c) for c in cells[3:] if c.startswith("`"))
    assert {escape.text(v) for v in (CLEAR_SCREEN, TABLE_BREAK, BIDI, BACKTICKS)} <= shown
    assert escape.text(FORGED_SUMMARY) in shown
    assert [line for line in text.splitlines() if "Plan:" in line.split("|")[0]] == [
        "**Plan: 1 to create, 2 to update, 1 to delete.**"
    ]


def test_json_escapes_hostile_values_and_keeps_them() -> None:
    text = render("json", hostile_plan())
    assert text.isascii() and all(line.isprintable() for line in text.splitlines())
    doc = json.loads(text)
    values = {
        str(v)
        for change in doc["changes"]
        for side in (change["before"], change["after"])
        if side
        for v in side.values()
    }
    assert {FORGED_SUMMARY, CLEAR_SCREEN, TABLE_BREAK, BIDI, ZERO_WIDTH} <= values
    assert EVIL_SERVICE in {c["service"] for c in doc["changes"]}


def test_notes_are_escaped() -> None:
    plan = make_plan(
        desired({"a": {}}, prune=False),
        current(
            {"a": {"Sneaky\n\nPlan: 0 to create, 0 to update, 0 to delete.": reg("https://x")}}
        ),
    )
    for name in ("text", "markdown"):
        text = render(name, plan)
        assert not [line for line in text.splitlines() if line.startswith(("Plan", "**Plan"))]
        assert "Sneaky\\n\\nPlan" in text or "Sneaky\\\\n\\\\nPlan" in text
        assert all(line.isprintable() for line in text.splitlines())
