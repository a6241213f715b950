"""A new API family is one table entry plus its services: no change to the client, the
listing normalizer, the schema, the checks or the planner.

Two made-up families exercise every variant the table can express: the account in the
query and in the body, the service in the query or nowhere, an ``endpoint`` URL field,
PUT updates, a ``*/*`` content type, and single-object and empty-body listings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests_mock as rm

from reconciler.config.schema_check import check_schema
from reconciler.config.yamlpos import parse_yaml
from reconciler.core import catalog
from reconciler.core.families import NOWHERE, FamilySpec, ListShape, body, query
from reconciler.core.model import Registration
from reconciler.engine.executor import apply_plan
from reconciler.engine.guard import Basis
from reconciler.engine.observe import read_current
from reconciler.engine.planner import families_to_read, make_plan
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from tests.helpers import desired, reg

BASE = "https://ts.example.test"
ACCOUNT = "A-1"
CREDS = Credentials(client_id="id", client_secret="cs-1234567", username="u", password="pw-12345")

WIDGET = FamilySpec(
    name="widget",
    title="Widget Alerts",
    base="/api/widget/v1/callbacks",
    list_account=query("accountName"),
    register_account=body("accountName"),
    delete_service=query("serviceName"),
    service_field="serviceName",
    url_field="endpoint",
    update_method="PUT",
    content_type="*/*",
    list_shape=ListShape.EITHER,
    empty_bodies=frozenset({b""}),
)
SOLO = FamilySpec(
    name="solo",
    title="Solo Hooks (one per account)",
    base="/api/solo/v2/callbacks",
    delete_service=NOWHERE,
    service_field=None,
    update_method="PUT",
    list_shape=ListShape.OBJECT,
    empty_bodies=frozenset({b""}),
    item_account=(),
    item_service=(),
)
WIDGET_URL = f"{BASE}/api/widget/v1/callbacks"
SOLO_URL = f"{BASE}/api/solo/v2/callbacks/{ACCOUNT}"


@pytest.fixture(autouse=True)
def new_families() -> Iterator[None]:
    with catalog.extra_services(WIDGET, ["WidgetHook"]), catalog.extra_services(SOLO, ["Solo"]):
        yield


@pytest.fixture
def api(requests_mock: rm.Mocker) -> rm.Mocker:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "bearer-1"})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "session-1"})
    return requests_mock


def client() -> ThingSpaceClient:
    return ThingSpaceClient(BASE, CREDS, sleep=lambda _: None)


def calls(m: rm.Mocker) -> list[Any]:
    return [r for r in m.request_history if r.path not in (TOKEN_PATH, LOGIN_PATH)]


def test_listing_with_the_account_in_the_query_and_one_object(api: rm.Mocker) -> None:
    item = {
        "accountName": ACCOUNT,
        "serviceName": "WidgetHook",
        "endpoint": "https://h.example.com/w",
    }
    api.get(WIDGET_URL, json=item)
    got = client().listing(ACCOUNT, WIDGET)
    assert got == {"WidgetHook": Registration(url="https://h.example.com/w", family=WIDGET)}
    assert calls(api)[0].qs == {"accountname": [ACCOUNT.lower()]}  # requests-mock lowercases


def test_register_update_and_deregister_follow_the_entry(api: rm.Mocker) -> None:
    api.post(WIDGET_URL, json={})
    api.put(WIDGET_URL, json={})
    api.delete(WIDGET_URL, json={})
    ts = client()
    ts.register(ACCOUNT, WIDGET, "WidgetHook", reg("https://h.example.com/w", "user", "pw-9"))
    ts.register(ACCOUNT, WIDGET, "WidgetHook", reg("https://h.example.com/w2"), update=True)
    ts.deregister(ACCOUNT, WIDGET, "WidgetHook")
    post, put, delete = calls(api)
    assert (post.method, put.method, delete.method) == ("POST", "PUT", "DELETE")
    # Only the fields the family takes: no username or password for this one.
    assert post.json() == {
        "accountName": ACCOUNT,
        "serviceName": "WidgetHook",
        "endpoint": "https://h.example.com/w",
    }
    assert post.headers["Content-Type"] == "*/*"
    assert put.json()["endpoint"] == "https://h.example.com/w2"
    assert delete.url == f"{WIDGET_URL}?accountName=A-1&serviceName=WidgetHook"


def test_a_family_with_one_unnamed_registration(api: rm.Mocker) -> None:
    api.get(SOLO_URL, [{"text": ""}, {"json": {"url": "https://h.example.com/s"}}])
    api.post(SOLO_URL, json={})
    api.delete(SOLO_URL, json={"success": True})
    ts = client()
    assert ts.listing(ACCOUNT, SOLO) == {}  # the empty body means none registered
    assert ts.listing(ACCOUNT, SOLO) == {
        "Solo": Registration(url="https://h.example.com/s", family=SOLO)
    }
    ts.register(ACCOUNT, SOLO, "Solo", reg("https://h.example.com/s2"))
    ts.deregister(ACCOUNT, SOLO, "Solo")
    assert calls(api)[2].json() == {"url": "https://h.example.com/s2"}  # no service name sent
    assert calls(api)[3].url == SOLO_URL  # no service anywhere


def test_the_schema_knows_the_new_services_and_their_fields() -> None:
    text = (
        "version: 1\naccounts:\n  A-1:\n    callbacks:\n"
        "      WidgetHook: {url: 'https://h.example.com/w'}\n"
        "      Solo: {url: 'https://h.example.com/s', username: nope}\n"
    )
    parsed = parse_yaml(text, path="c.yaml")
    assert parsed.doc is not None
    lines = [str(p) for p in check_schema(parsed.doc)]
    assert lines == [
        "c.yaml:6:46: $.accounts['A-1'].callbacks.Solo.username: unknown field 'username' "
        "(Solo registrations take only: url, protect)"
    ]
    assert "WidgetHook" in json.loads(catalog.schema_text())["$defs"]["serviceName"]["enum"]


NEW = "https://h.example.com/new"


def test_plan_and_apply_through_the_new_family(api: rm.Mocker) -> None:
    # Listings as they are before the writes (plan, re-read before writing, and, for the
    # widget, the look after the first write), then after them.
    widget = [{"serviceName": "WidgetHook", "endpoint": "https://h.example.com/old"}]
    api.get(WIDGET_URL, [{"json": widget}] * 3 + [{"json": [{**widget[0], "endpoint": NEW}]}])
    api.get(SOLO_URL, [{"text": ""}] * 2 + [{"json": {"url": "https://h.example.com/s"}}])
    api.get(f"{BASE}/api/m2m/v1/callbacks/{ACCOUNT}", json=[])
    api.get(f"{BASE}/api/fota/v1/callbacks/{ACCOUNT}", text="")
    api.put(WIDGET_URL, json={})
    api.post(SOLO_URL, json={})
    state = desired(
        {
            ACCOUNT: {
                "WidgetHook": reg(NEW),
                "Solo": reg("https://h.example.com/s"),
            }
        }
    )
    ts = client()
    wanted = families_to_read(state)
    assert WIDGET in wanted[ACCOUNT] and SOLO in wanted[ACCOUNT]
    current = read_current(ts, wanted, parallelism=2)
    plan = make_plan(state, current)
    assert [(c.action.value, c.service, c.family.name) for c in plan.changes] == [
        ("create", "Solo", "solo"),
        ("update", "WidgetHook", "widget"),
    ]
    report = apply_plan(plan, ts, basis=Basis(current, wanted), parallelism=2)
    assert report.ok, report
    writes = [(r.method, r.path) for r in calls(api) if r.method != "GET"]
    assert sorted(writes) == [
        ("POST", "/api/solo/v2/callbacks/a-1"),
        ("PUT", "/api/widget/v1/callbacks"),
    ]
