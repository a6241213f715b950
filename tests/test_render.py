"""Renderer golden files. Regenerate with UPDATE_GOLDEN=1 after an intended change."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from reconciler.engine.plan import Plan
from reconciler.engine.planner import make_plan
from reconciler.render import RENDERERS, renderer
from tests.helpers import current, desired, reg

GOLDEN = Path(__file__).parent / "golden"
SECRETS = ("n3w-sms-secret", "0ld-sms-secret", "unreturned-secret")


def sample_plan() -> Plan:
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
