"""The five families added to the simulator's table, over real HTTP on 127.0.0.1: the
variants each accepts, HPL's error body and name namespace, createdOn, the shared-secret
header, and the admin side (request log, faults, session expiry, state, reset) on each.

Requests are built here by hand with ``requests`` (the SDK's view of the same endpoints
is tests/test_sdk_against_simulator.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig, SimulatorCredentials
from reconciler.simulator.families import SHARED_SECRET_HEADER

CREDS = SimulatorCredentials("cid", client_secret="csecret", username="u", password="pw")
A1, A2 = "0252012345-00001", "0252012345-00002"
DIAG = "/api/diagnostics/v1/callbacks"
HPL = "/api/hyper-precise/v1/callbacks"


class Caller:
    """Authenticated calls to one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.base = sim.base_url
        self.http = requests.Session()
        token = self.http.post(
            self.base + "/api/ts/v1/oauth2/token",
            auth=(CREDS.client_id, CREDS.client_secret),
            data={"grant_type": "client_credentials"},
            timeout=10,
        ).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        login = self.http.post(
            self.base + "/api/m2m/v1/session/login",
            json={"username": CREDS.username, "password": CREDS.password},
            timeout=10,
        )
        self.http.headers["VZ-M2M-Token"] = login.json()["sessionToken"]
        sim.clear_requests()  # the log then holds only the calls a test makes

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> requests.Response:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        return self.http.request(
            method, self.base + path, data=data, params=params, headers=headers, timeout=10
        )

    def admin(self, method: str, what: str, body: Any = None) -> Any:
        r = requests.request(method, f"{self.base}/_simulator/{what}", json=body, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def call(tmp_path: Path) -> Iterator[Caller]:
    config = SimulatorConfig(credentials=CREDS)
    with Simulator(config, state_path=tmp_path / "sim.json") as sim:
        sim.start()
        yield Caller(sim)


def diag_body(account: str = A1, endpoint: str = "https://d.example.com/1") -> dict[str, Any]:
    return {"accountName": account, "serviceName": "Diagnostics", "endpoint": endpoint}


# Per family: one register call, and the list call that shows it, for account A1.
WRITES: dict[str, tuple[str, str, Any, dict[str, str]]] = {
    "loc": ("POST", f"/api/loc/v1/callbacks/{A1}", {"name": "Location", "url": "https://l/"}, {}),
    "diag": ("POST", DIAG, diag_body(), {}),
    "hpl": ("POST", HPL, {"name": "Bullseye", "url": "https://h/"}, {"accountNumber": A1}),
    "fota2": ("POST", f"/api/fota/v2/callbacks/{A1}", {"url": "https://f/"}, {}),
    "fota3": ("POST", f"/api/fota/v3/callbacks/{A1}", {"url": "https://f/"}, {}),
}
LISTS: dict[str, tuple[str, dict[str, str]]] = {
    "loc": (f"/api/loc/v1/callbacks/{A1}", {}),
    "diag": (DIAG, {"accountName": A1}),
    "hpl": (HPL, {"accountNumber": A1}),
    "fota2": (f"/api/fota/v2/callbacks/{A1}", {}),
    "fota3": (f"/api/fota/v3/callbacks/{A1}", {}),
}


@pytest.mark.parametrize("family", sorted(WRITES))
def test_request_log_names_the_account_and_fail_writes_hits_it(call: Caller, family: str) -> None:
    method, path, body, params = WRITES[family]
    list_path, list_params = LISTS[family]
    call.admin("POST", "faults", {"fail_writes": {A1: 503}})
    assert call(method, path, body, params=params).status_code == 503
    assert call("GET", list_path, params=list_params).status_code == 200  # reads still work
    call.admin("DELETE", "faults")
    assert call(method, path, body, params=params).status_code == 200
    assert call.admin("GET", "state")["accounts"][A1]
    log = call.admin("GET", "requests")
    assert [(r["method"], r["status"], r["account"]) for r in log] == [
        (method, 503, A1), ("GET", 200, A1), (method, 200, A1)
    ]  # fmt: skip
    assert call.admin("POST", "reset") == {"reset": True}
    assert call.admin("GET", "state")["accounts"] == {}


@pytest.mark.parametrize("family", sorted(WRITES))
def test_expired_sessions_and_server_faults_reach_every_family(call: Caller, family: str) -> None:
    path, params = LISTS[family]
    call.admin("POST", "faults", {"server_error_next": 1, "server_error_status": 502})
    assert call("GET", path, params=params).status_code == 502
    assert call("GET", path, params=params).status_code == 200
    call.admin("POST", "sessions/expire")
    assert call("GET", path, params=params).status_code == 401


def test_device_location_secret_header_accepts_both_content_types(call: Caller) -> None:
    path = f"/api/loc/v1/callbacks/{A1}"
    assert call("GET", path).content == b""  # "empty if there are no callback services"
    secrets = set()
    for content_type in ("*/*", "application/json"):
        r = call(
            "POST", path, {"name": "DeviceLocation", "url": "https://l/"}, content_type=content_type
        )
        assert r.json() == {"account": A1, "name": "DeviceLocation"}
        secrets.add(r.headers[SHARED_SECRET_HEADER])
    assert len(secrets) == 2 and all(len(s) == 64 for s in secrets)  # fresh on each register
    assert call("GET", path).json() == [{"name": "DeviceLocation", "url": "https://l/"}]
    refused = call("POST", path, {"name": "DeviceUsage", "url": "https://l/"})
    assert refused.status_code == 400 and "(use /api/m2m/v1)" in refused.json()["errorMessage"]
    assert call("DELETE", f"{path}/name/DeviceLocation").json() == {"success": True}
    assert call("DELETE", f"{path}/name/DeviceLocation").json()["errorCode"] == (
        "INVALID_PARAMETER"
    )


def test_diagnostics_created_on_is_rfc3339_and_persisted(call: Caller) -> None:
    r = call("POST", DIAG, {**diag_body(), "httpHeaders": {"X-Key": "v"}}, content_type="*/*")
    assert r.status_code == 200 and len(r.headers[SHARED_SECRET_HEADER]) == 64
    created = r.json()["createdOn"]
    assert datetime.fromisoformat(created).utcoffset() is not None
    stored = call.admin("GET", "state")["accounts"][A1]["Diagnostics"]
    assert stored == {"url": "https://d.example.com/1", "httpHeaders": {"X-Key": "v"},
                      "createdOn": created}  # fmt: skip
    assert call.sim.state_path is not None
    restarted = Simulator(SimulatorConfig(credentials=CREDS), state_path=call.sim.state_path)
    assert restarted.snapshot()["accounts"][A1]["Diagnostics"]["createdOn"] == created
    restarted.stop()
    listed = call("GET", DIAG, params={"accountName": A1}).json()
    assert listed == [{"accountName": A1, "serviceName": "Diagnostics",
                       "endpoint": "https://d.example.com/1", "createdOn": created,
                       "httpHeaders": {"X-Key": "v"}}]  # fmt: skip
    # The account is read from the body on POST, never the query.
    r = call("POST", DIAG, {"serviceName": "Diagnostics", "endpoint": "https://d/"},
             params={"accountName": A1})  # fmt: skip
    assert r.status_code == 400 and "'accountName'" in r.json()["errorMessage"]
    gone = call("DELETE", DIAG, params={"accountName": A1, "serviceName": "Diagnostics"})
    assert gone.json()["endpoint"] == "https://d.example.com/1"


def test_hpl_names_are_free_form_and_kept_apart_from_other_families(call: Caller) -> None:
    account = {"accountNumber": A1}
    for name in ("DeviceUsage", "Location", "Fota"):  # names other families own
        r = call("POST", HPL, {"name": name, "url": f"https://h/{name}"}, params=account)
        assert r.json() == {"accountName": A1, "name": name}
    m2m = call("POST", f"/api/m2m/v1/callbacks/{A1}", {"name": "DeviceUsage", "url": "https://m/"})
    assert m2m.status_code == 200
    assert [i["name"] for i in call("GET", HPL, params=account).json()] == [
        "DeviceUsage", "Location", "Fota"
    ]  # fmt: skip
    assert call("GET", f"/api/m2m/v1/callbacks/{A1}").json()[0]["url"] == "https://m/"
    assert call("GET", f"/api/loc/v1/callbacks/{A1}").content == b""
    state = call.admin("GET", "state")["accounts"][A1]
    assert set(state) == {"HPL:DeviceUsage", "HPL:Location", "HPL:Fota", "DeviceUsage"}
    # Deregister by the SDK's ?service= or the docs' ?name=; no content either way.
    r = call("DELETE", HPL, params={**account, "service": "DeviceUsage"})
    assert r.status_code == 200 and r.content == b""
    r = call("DELETE", HPL, params={**account, "name": "Location"})
    assert r.status_code == 200 and r.content == b""
    assert call("GET", f"/api/m2m/v1/callbacks/{A1}").json()[0]["serviceName"] == "DeviceUsage"


def test_hpl_errors_use_its_own_body(call: Caller) -> None:
    r = call("DELETE", HPL, params={"accountNumber": A1, "service": "Nothing"})
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"responseCode", "message", "fault"}
    assert body["responseCode"] == body["fault"]["code"] == "INVALID_PARAMETER"
    assert "'Nothing' is not registered" in body["message"]
    missing = call("GET", HPL).json()
    assert missing["message"] == "query parameter 'accountNumber' is required"
    call.admin("POST", "faults", {"rate_limit_next": 1})
    limited = call("GET", HPL, params={"accountNumber": A1})
    assert limited.status_code == 429 and limited.json()["responseCode"] == "TOO_MANY_REQUESTS"
    assert "Retry-After" in limited.headers
    call.admin("POST", "sessions/expire")
    assert call("GET", HPL, params={"accountNumber": A1}).json()["responseCode"] == (
        "INVALID_ACCESS"
    )
    # Other families keep {errorCode, errorMessage}.
    assert set(call("GET", DIAG).json()) == {"errorCode", "errorMessage"}


@pytest.mark.parametrize(("version", "content_type"), [("v2", "*/*"), ("v3", "application/json")])
def test_fota_v2_v3_one_url_per_account(call: Caller, version: str, content_type: str) -> None:
    path = f"/api/fota/{version}/callbacks/{A1}"
    assert call("GET", path).content == b""
    refused = call("PUT", path, {"url": "https://f/1"}, content_type=content_type)
    assert refused.status_code == 400  # PUT replaces, it never creates
    assert call("POST", path, {"url": "https://f/1"}, content_type=content_type).json() == {
        "url": "https://f/1"
    }
    assert call("PUT", path, {"url": "https://f/2"}, content_type=content_type).json() == {
        "url": "https://f/2"
    }
    assert call("POST", path, {"url": "https://f/3"}, content_type=content_type).status_code == 200
    assert call("GET", path).json() == {"url": "https://f/3"}  # one object, replaced
    other = "v3" if version == "v2" else "v2"
    assert call("GET", f"/api/fota/{other}/callbacks/{A1}").content == b""
    assert call("GET", f"/api/fota/v1/callbacks/{A1}").content == b""
    assert call("DELETE", path).json() == {"success": True}
    assert call("DELETE", path).status_code == 400


def test_fota_v3_takes_json_only(call: Caller) -> None:
    r = call("POST", f"/api/fota/v3/callbacks/{A1}", {"url": "https://f/"}, content_type="*/*")
    assert r.status_code == 400 and "Content-Type" in r.json()["errorMessage"]


def test_an_old_state_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "accounts": {
                    A2: {"DeviceUsage": {"url": "https://m/"}, "Fota": {"url": "https://f/"}}
                },
            }
        )
    )
    with Simulator(SimulatorConfig(credentials=CREDS), state_path=path) as sim:
        sim.start()
        caller = Caller(sim)
        assert caller("GET", f"/api/m2m/v1/callbacks/{A2}").json()[0]["serviceName"] == (
            "DeviceUsage"
        )
        assert caller("GET", f"/api/fota/v1/callbacks/{A2}").json()[0]["name"] == "Fota"
        assert caller("GET", HPL, params={"accountNumber": A2}).json() == []


def test_startup_fail_writes_covers_a_body_account() -> None:
    settings = FaultSettings(fail_writes={A2: 500})
    with Simulator(SimulatorConfig(credentials=CREDS, faults=settings)) as sim:
        sim.start()
        caller = Caller(sim)
        assert caller("POST", DIAG, diag_body(A2)).status_code == 500
        assert caller("POST", DIAG, diag_body(A1)).status_code == 200
        assert [(r.account, r.status) for r in sim.requests()][-2:] == [(A2, 500), (A1, 200)]
