"""The five newer families in the product: catalog names, manage:, headers, renderers,
saved plans, journal and export (unit level; end to end is tests/test_e2e_families.py)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
import requests_mock as rm

from reconciler.config import load_config
from reconciler.core import catalog, families
from reconciler.core.errors import ApiError, ConfigError, NotEntitledError
from reconciler.core.families import DIAGNOSTICS, FOTA, FOTA_V2, HPL, LOCATION, M2M
from reconciler.core.model import DesiredAccount, DesiredState, Registration
from reconciler.core.secrets import Secret
from reconciler.engine.journal import registration_record
from reconciler.engine.observe import _entitlement
from reconciler.engine.plan import Plan, PlanDataError
from reconciler.engine.planner import families_to_read, make_plan, reading_lines
from reconciler.engine.restore import RestorePoint
from reconciler.engine.saved_plan import remote_digest
from reconciler.render import renderer
from reconciler.render.export import render_export
from reconciler.thingspace import wireformat
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from tests.helpers import current, reg

BASE = "https://ts.example.test"
SECRET = "header-value-secret-91c"


def headers(*pairs: tuple[str, str]) -> tuple[tuple[str, Secret], ...]:
    return tuple((name, Secret(value)) for name, value in pairs)


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "family"),
    [
        ("Location", LOCATION),
        ("DeviceLocation", LOCATION),
        ("Diagnostics", DIAGNOSTICS),
        ("HPL:BullseyeReporting", HPL),
        ("FotaV2", FOTA_V2),
        ("Fota", FOTA),
        ("HPL:", None),  # a prefix without a name
        ("BullseyeReporting", None),  # a free-form name without its prefix
    ],
)
def test_every_service_maps_to_exactly_one_family(service: str, family: object) -> None:
    assert catalog.family_of(service) is family


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("HPL", "HPL:<name>"),
        ("HyperPreciseLocation", "HPL:<name>"),
        ("hpl:Bullseye", "HPL:Bullseye"),
        ("HPL:", "HPL:<name>"),
        ("FOTAv2", "FotaV2"),
        ("fota-v3", "FotaV3"),
        ("DeviceDiagnostics", "Diagnostics"),
        ("location", "Location"),
        ("Zzyzx", None),
    ],
)
def test_did_you_mean_knows_every_name(typed: str, hint: str | None) -> None:
    assert catalog.suggest(typed) == hint


@pytest.mark.parametrize(
    ("typed", "hint"),
    [("locaton", "location"), ("HPL", "hpl"), ("FOTAv2", "fota-v2"), ("qqqqqq", None)],
)
def test_did_you_mean_for_families(typed: str, hint: str | None) -> None:
    assert catalog.suggest_family(typed) == hint


def test_free_form_names_go_on_the_wire_without_their_prefix() -> None:
    call = wireformat.register_call(
        HPL, "A-1", "HPL:Bullseye", Registration(url="https://h.example.com/h"), update=False
    )
    assert (call.method, call.path) == ("POST", "/api/hyper-precise/v1/callbacks?accountNumber=A-1")
    assert call.body == {"name": "Bullseye", "url": "https://h.example.com/h"}
    assert wireformat.deregister_path(HPL, "A-1", "HPL:Bullseye") == (
        "/api/hyper-precise/v1/callbacks?accountNumber=A-1&service=Bullseye"
    )
    # Read back: the docs' aname or the SDK's accountName; the prefix added again.
    items = [
        {"aname": "A-1", "name": "Bullseye", "url": "https://h.example.com/h"},
        {"accountName": "B-2", "name": "Other", "url": "https://h.example.com/o"},
    ]
    assert list(wireformat.normalize(HPL, "A-1", items)) == ["HPL:Bullseye"]


def test_device_location_lists_in_the_sdk_form_and_the_docs_form() -> None:
    items = [
        {"name": "Location", "url": "https://h.example.com/l"},
        {"accountName": "A-1", "serviceName": "DeviceLocation", "url": "https://h.example.com/d"},
    ]
    assert sorted(wireformat.normalize(LOCATION, "A-1", items)) == ["DeviceLocation", "Location"]


# -- headers on the wire -------------------------------------------------------------------


def test_diagnostics_headers_are_sent_and_masked_in_errors() -> None:
    registration = Registration(url="https://h.example.com/d", headers=headers(("X-Token", SECRET)))
    call = wireformat.register_call(DIAGNOSTICS, "A-1", "Diagnostics", registration, update=False)
    assert call.body == {
        "accountName": "A-1",
        "serviceName": "Diagnostics",
        "endpoint": "https://h.example.com/d",
        "httpHeaders": {"X-Token": SECRET},
    }
    assert call.secrets == (SECRET,)


@pytest.mark.parametrize(
    ("item", "expected", "known"),
    [
        ({}, None, False),  # not returned: cannot be compared
        ({"httpHeaders": None}, None, True),
        ({"httpHeaders": {}}, None, True),
        ({"httpHeaders": {"B": "2", "A": "1"}}, (("A", "1"), ("B", "2")), True),
    ],
)
def test_listed_headers(item: dict[str, object], expected: object, known: bool) -> None:
    listed = {"serviceName": "Diagnostics", "endpoint": "https://h.example.com/d", **item}
    [found] = wireformat.normalize(DIAGNOSTICS, "A-1", [listed]).values()
    shown = None if found.headers is None else tuple((n, v.reveal()) for n, v in found.headers)
    assert (shown, found.headers_known) == (expected, known)


@pytest.mark.parametrize("bad", [["X"], {"X": 1}, "X: 1"])
def test_malformed_listed_headers_are_an_api_error(bad: object) -> None:
    listed = {"serviceName": "Diagnostics", "endpoint": "https://h.example.com/d"}
    with pytest.raises(ApiError, match="item 0 has a malformed httpHeaders"):
        wireformat.normalize(DIAGNOSTICS, "A-1", [{**listed, "httpHeaders": bad}])


def test_diagnostics_callback_not_registered_means_none(requests_mock: rm.Mocker) -> None:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "bearer-1"})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "session-1"})
    url = f"{BASE}/api/diagnostics/v1/callbacks?accountName=A-1"
    refused = {"errorCode": "CALLBACK_NOT_REGISTERED", "errorMessage": "not registered"}
    other = {"errorCode": "FORBIDDEN", "errorMessage": "no"}
    requests_mock.get(
        url, [{"status_code": 403, "json": refused}, {"status_code": 403, "json": other}]
    )
    creds = Credentials(client_id="id", client_secret="cs-1234567", username="u", password="p-1")
    client = ThingSpaceClient(BASE, creds, sleep=lambda _: None)
    assert client.listing("A-1", DIAGNOSTICS) == {}
    with pytest.raises(ApiError, match="HTTP 403 FORBIDDEN"):
        client.listing("A-1", DIAGNOSTICS)


# -- manage: and what is read --------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> DesiredState:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_config(str(path), env={"TOKEN": SECRET}, require_env=True).desired


def test_manage_per_account_and_top_level(tmp_path: Path) -> None:
    state = _load(
        tmp_path,
        "version: 1\nmanage: [hpl]\naccounts:\n"
        "  A-1:\n    callbacks: {}\n"
        "  A-2:\n    manage: [m2m, location]\n    callbacks:\n"
        "      FotaV2: {url: 'https://h.example.com/2'}\n"
        "  A-3:\n    prune: false\n    callbacks:\n"
        "      Diagnostics:\n        url: https://h.example.com/d\n"
        "        httpHeaders: {X-Token: '${env:TOKEN}'}\n",
    )
    assert families_to_read(state) == {
        "A-1": frozenset({HPL}),
        "A-2": frozenset({M2M, LOCATION, FOTA_V2}),
        "A-3": frozenset({DIAGNOSTICS}),
    }
    [(name, value)] = state.accounts["A-3"].callbacks["Diagnostics"].headers or ()
    assert (name, value.reveal()) == ("X-Token", SECRET)
    assert SECRET in state.secrets()  # masked wherever API text could echo it
    assert reading_lines(state, families_to_read(state)) == (
        "Reading diagnostics for account A-3",
        "Reading hpl for account A-1",
        "Reading m2m, location, fota-v2 for account A-2",
    )


def test_reading_lines_group_accounts_and_stay_silent_for_version_1() -> None:
    def account(name: str, manage: frozenset[families.FamilySpec] | None) -> DesiredAccount:
        return DesiredAccount(name, True, MappingProxyType({}), manage=manage)

    plain = DesiredState(MappingProxyType({f"a{i}": account(f"a{i}", None) for i in range(1000)}))
    assert reading_lines(plain, families_to_read(plain)) == ()
    nothing = frozenset[families.FamilySpec]()
    managed = DesiredState(
        MappingProxyType(
            {**plain.accounts, "z": account("z", frozenset({M2M})), "y": account("y", nothing)}
        )
    )
    assert reading_lines(managed, families_to_read(managed)) == (
        "Reading m2m, fota for 1000 accounts",
        "Reading no families for account y",
        "Reading m2m for account z",
    )


def test_manage_errors_are_located(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, "version: 1\nmanage: [7]\naccounts:\n  A-1:\n    callbacks: {}\n")
    assert raised.value.lines() == [
        f"{tmp_path}/c.yaml:2:10: $.manage[0]: expected a family name, got an integer"
    ]
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, "version: 1\nmanage: [zzzzzz]\naccounts:\n  A-1:\n    callbacks: {}\n")
    assert raised.value.lines() == [
        f'{tmp_path}/c.yaml:2:10: $.manage[0]: unknown family "zzzzzz"; families: m2m, fota, '
        "location, diagnostics, hpl, fota-v2, fota-v3"
    ]


def test_a_refused_listing_names_account_and_family() -> None:
    jobs = [("A-1", M2M), ("A-1", LOCATION)]
    refused = ApiError("GET", "/api/loc/v1/callbacks/A-1", 403, "FORBIDDEN")
    error = _entitlement(refused, jobs)
    assert isinstance(error, NotEntitledError)
    assert str(error).startswith('account "A-1" is not entitled to Device Location (HTTP 403')
    assert _entitlement(ApiError("GET", "/api/loc/v1/callbacks/A-1", 500), jobs) is None
    assert _entitlement(ApiError("POST", "/api/loc/v1/callbacks/A-1", 403), jobs) is None
    assert _entitlement(ApiError("GET", "/api/loc/v1/callbacks/B-2", 401), jobs) is None


# -- headers in plans, saved plans, journal, export ----------------------------------------


def _header_plan() -> Plan:
    want = replace(reg("https://h.example.com/d"), headers=headers(("X-Token", SECRET)))
    have = replace(want, headers=headers(("X-Token", "another-value-3e1")), family=DIAGNOSTICS)
    state = DesiredState(
        MappingProxyType(
            {"A-1": DesiredAccount("A-1", True, MappingProxyType({"Diagnostics": want}))}
        )
    )
    return make_plan(state, current({"A-1": {"Diagnostics": have}}), reading=("Reading x",))


def test_a_changed_header_value_is_an_update_never_shown() -> None:
    plan = _header_plan()
    [change] = plan.changes
    assert [(f.name, f.before, f.after, f.sensitive) for f in change.fields] == [
        ("httpHeaders", "X-Token=(sensitive)", "X-Token=(sensitive)", True)
    ]
    for name in ("text", "markdown", "json"):
        out = io.StringIO()
        renderer(name)(plan, out)
        assert SECRET not in out.getvalue() and "another-value" not in out.getvalue()
        assert "X-Token" in out.getvalue() and "Reading x" in out.getvalue()
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.to_dict() == plan.to_dict()


def test_unchanged_or_unreturned_headers_are_no_change() -> None:
    want = replace(reg("https://h.example.com/d"), headers=headers(("X-Token", SECRET)))
    state = DesiredState(
        MappingProxyType(
            {"A-1": DesiredAccount("A-1", True, MappingProxyType({"Diagnostics": want}))}
        )
    )
    same = replace(want, family=DIAGNOSTICS)
    unreturned = replace(want, headers=None, headers_known=False, family=DIAGNOSTICS)
    assert not make_plan(state, current({"A-1": {"Diagnostics": same}})).changes
    plan = make_plan(state, current({"A-1": {"Diagnostics": unreturned}}))
    assert not plan.changes
    assert plan.notes == (
        "A-1/Diagnostics: the API does not return the header values, so their drift cannot "
        "be checked for this registration.",
    )
    removed = replace(want, headers=None, family=DIAGNOSTICS)
    [change] = make_plan(state, current({"A-1": {"Diagnostics": removed}})).changes
    assert [(f.name, f.before, f.after) for f in change.fields] == [
        ("httpHeaders", None, "X-Token=(sensitive)")
    ]


@pytest.mark.parametrize("bad", [{"X": "plain"}, {}, ["X"], "X"])
def test_a_saved_plan_with_header_values_is_refused(bad: object) -> None:
    data = _header_plan().to_dict()
    data["changes"][0]["after"]["httpHeaders"] = bad
    with pytest.raises(PlanDataError, match="httpHeaders is not a map of masked values"):
        Plan.from_dict(data)


def test_journal_digest_and_export_keep_header_names_only() -> None:
    listed = Registration(
        url="https://h.example.com/d", family=DIAGNOSTICS, headers=headers(("X-Token", SECRET))
    )
    unknown = replace(listed, headers=None, headers_known=False)
    assert registration_record(listed) == {
        "url": "https://h.example.com/d",
        "username": None,
        "password": "set" if listed.password else "unset",
        "httpHeaders": ["X-Token"],
    }
    assert (registration_record(unknown) or {})["httpHeaders"] == "unknown"
    state = current({"A-1": {"Diagnostics": listed}})
    wanted = {"A-1": frozenset({DIAGNOSTICS})}
    other = current({"A-1": {"Diagnostics": replace(listed, headers=headers(("X-Other", "v")))}})
    assert remote_digest(state, wanted) != remote_digest(other, wanted)
    text, notes = render_export(state, ["A-1"])
    assert "X-Token: ${env:TSC_A_1_DIAGNOSTICS_X_TOKEN}" in text and SECRET not in text
    assert notes == ["A-1/Diagnostics sends header X-Token: set TSC_A_1_DIAGNOSTICS_X_TOKEN "
                     "before plan/apply."]  # fmt: skip


def test_hpl_error_bodies_are_read(requests_mock: rm.Mocker) -> None:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "bearer-1"})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "session-1"})
    url = f"{BASE}/api/hyper-precise/v1/callbacks?accountNumber=A-1"
    fault = {"code": "NOT_FOUND", "message": "not registered", "description": "not registered"}
    gone = {"responseCode": "NOT_FOUND", "message": "listener not registered", "fault": fault}
    requests_mock.delete(f"{url}&service=Bullseye", status_code=400, json=gone)
    requests_mock.get(
        url, [{"json": []}, {"status_code": 409, "json": {**gone, "message": "busy"}}]
    )
    creds = Credentials(client_id="id", client_secret="cs-1234567", username="u", password="p-1")
    client = ThingSpaceClient(BASE, creds, sleep=lambda _: None)
    client.deregister("A-1", HPL, "HPL:Bullseye")  # "not registered", and the list agrees
    with pytest.raises(ApiError) as raised:
        client.listing("A-1", HPL)
    assert str(raised.value) == (
        "GET /api/hyper-precise/v1/callbacks?accountNumber=A-1: HTTP 409 NOT_FOUND: busy"
    )


def test_a_backup_restores_with_the_manage_list_of_what_was_read() -> None:
    point = RestorePoint(
        run_id="r",
        time="t",
        config=None,
        endpoint=None,
        current=current({"A-1": {}, "B-2": {}, "C-3": {}}),
        families={
            "A-1": frozenset({M2M, FOTA}),
            "B-2": frozenset({M2M, FOTA, HPL}),
            "C-3": frozenset({HPL}),
        },
        created={},
    )
    assert [point.complete(a) for a in ("A-1", "B-2", "C-3")] == [True, True, False]
    assert [point.manage(a) for a in ("A-1", "B-2", "C-3")] == [None, ["m2m", "fota", "hpl"], None]
    text, _ = render_export(point.current, ["A-1", "B-2"], manage={"B-2": ["m2m", "fota", "hpl"]})
    assert '"B-2":\n    prune: true\n    manage:\n    - m2m\n    - fota\n    - hpl\n' in text
    assert '"A-1":\n    prune: true\n    callbacks: {}\n' in text


def test_diagnostics_deregister_of_what_is_gone_is_confirmed(requests_mock: rm.Mocker) -> None:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "bearer-1"})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "session-1"})
    url = f"{BASE}/api/diagnostics/v1/callbacks?accountName=A-1"
    gone = {"errorCode": "CALLBACK_NOT_REGISTERED", "errorMessage": "Callback is not registered"}
    requests_mock.delete(f"{url}&serviceName=Diagnostics", status_code=403, json=gone)
    requests_mock.get(url, status_code=403, json=gone)
    creds = Credentials(client_id="id", client_secret="cs-1234567", username="u", password="p-1")
    ThingSpaceClient(BASE, creds, sleep=lambda _: None).deregister(
        "A-1", DIAGNOSTICS, "Diagnostics"
    )
    assert [r.method for r in requests_mock.request_history][-2:] == ["DELETE", "GET"]
