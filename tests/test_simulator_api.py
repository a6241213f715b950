"""Contract tests of the simulator's ThingSpace API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from reconciler.simulator import RequestRecord, Simulator, SimulatorConfig, SimulatorCredentials

CREDS = SimulatorCredentials(
    client_id="client-id", client_secret="client-secret-XYZ", username="user", password="pw-ABC"
)
ACCOUNT = "0252012345-00001"
TIMEOUT = 10


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Client:
    """A minimal hand-written ThingSpace client: the simulator must not depend on ours."""

    def __init__(self, base: str, creds: SimulatorCredentials = CREDS) -> None:
        self.base = base
        self.creds = creds
        self._headers: dict[str, str] | None = None

    def token(self) -> str:
        r = requests.post(
            f"{self.base}/api/ts/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(self.creds.client_id, self.creds.client_secret),
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def login(self, token: str, password: str | None = None) -> requests.Response:
        body = {"username": self.creds.username, "password": password or self.creds.password}
        return requests.post(
            f"{self.base}/api/m2m/v1/session/login",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )

    def headers(self) -> dict[str, str]:
        if self._headers is None:
            token = self.token()
            r = self.login(token)
            assert r.status_code == 200, r.text
            self._headers = {
                "Authorization": f"Bearer {token}",
                "VZ-M2M-Token": r.json()["sessionToken"],
            }
        return self._headers

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return requests.request(
            method, self.base + path, headers=headers, timeout=TIMEOUT, **kwargs
        )

    def m2m(
        self, method: str, account: str = ACCOUNT, suffix: str = "", **kw: Any
    ) -> requests.Response:
        return self.call(method, f"/api/m2m/v1/callbacks/{account}{suffix}", **kw)

    def fota(
        self, method: str, account: str = ACCOUNT, suffix: str = "", **kw: Any
    ) -> requests.Response:
        return self.call(method, f"/api/fota/v1/callbacks/{account}{suffix}", **kw)


def assert_error(r: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"errorCode", "errorMessage"}
    assert isinstance(body["errorMessage"], str) and body["errorMessage"]
    if code is not None:
        assert body["errorCode"] == code
    return body  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=CREDS, session_idle_seconds=1200, token_ttl_seconds=3600)
    with Simulator(config, clock=clock) as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Client:
    return Client(sim.base_url)


# --- OAuth token -------------------------------------------------------------------------


def test_start_returns_loopback_base_url() -> None:
    simulator = Simulator(SimulatorConfig(credentials=CREDS))
    try:
        url = simulator.start()
        assert url == simulator.base_url
        assert url.startswith("http://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0
    finally:
        simulator.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_simulator/state", timeout=TIMEOUT)


def test_token_success_shape(sim: Simulator) -> None:
    r = requests.post(
        f"{sim.base_url}/api/ts/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(CREDS.client_id, CREDS.client_secret),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 20


@pytest.mark.parametrize(
    "auth_header",
    [
        None,
        "Basic " + "bm90LWJhc2U2NA!!",
        "Bearer something",
        "Basic Y2xpZW50LWlkOndyb25n",  # client-id:wrong
        "Basic d3Jvbmc6Y2xpZW50LXNlY3JldC1YWVo=",  # wrong:client-secret-XYZ
    ],
)
def test_token_refuses_bad_client_credentials(sim: Simulator, auth_header: str | None) -> None:
    headers = {"Authorization": auth_header} if auth_header else {}
    r = requests.post(
        f"{sim.base_url}/api/ts/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=headers,
        timeout=TIMEOUT,
    )
    assert_error(r, 401, "INVALID_ACCESS")


@pytest.mark.parametrize("data", [{"grant_type": "password"}, {}])
def test_token_refuses_wrong_grant_type(sim: Simulator, data: dict[str, str]) -> None:
    r = requests.post(
        f"{sim.base_url}/api/ts/v1/oauth2/token",
        data=data,
        auth=(CREDS.client_id, CREDS.client_secret),
        timeout=TIMEOUT,
    )
    assert_error(r, 400)


# --- session login / logout --------------------------------------------------------------


def test_login_success_shape(client: Client) -> None:
    r = client.login(client.token())
    assert r.status_code == 200
    assert set(r.json()) == {"sessionToken"} and r.json()["sessionToken"]


@pytest.mark.parametrize("bearer", [None, "Bearer not-a-token", "Basic abc"])
def test_login_needs_a_valid_bearer(sim: Simulator, bearer: str | None) -> None:
    r = requests.post(
        f"{sim.base_url}/api/m2m/v1/session/login",
        json={"username": CREDS.username, "password": CREDS.password},
        headers={"Authorization": bearer} if bearer else {},
        timeout=TIMEOUT,
    )
    assert_error(r, 401, "INVALID_ACCESS")


def test_bad_login_is_400_and_never_echoes_the_password(client: Client) -> None:
    r = client.login(client.token(), password="hunter2-not-it")
    body = assert_error(r, 400, "INVALID_LOGIN")
    assert "hunter2" not in r.text and "hunter2" not in str(body)


def test_five_failed_logins_lock_the_user_until_reset(sim: Simulator, client: Client) -> None:
    token = client.token()
    for _ in range(5):
        assert_error(client.login(token, password="wrong"), 400, "INVALID_LOGIN")
    assert_error(client.login(token), 401, "USER_LOCKED")  # even the right password
    assert_error(client.login(token), 401, "USER_LOCKED")
    assert requests.post(f"{sim.base_url}/_simulator/reset", timeout=TIMEOUT).status_code == 200
    assert client.login(token).status_code == 200


def test_a_good_login_resets_the_failure_count(client: Client) -> None:
    token = client.token()
    for _ in range(4):
        assert client.login(token, password="wrong").status_code == 400
    assert client.login(token).status_code == 200
    for _ in range(4):
        assert client.login(token, password="wrong").status_code == 400
    assert client.login(token).status_code == 200


def test_logout_ends_the_session(client: Client) -> None:
    headers = client.headers()
    assert client.m2m("GET").status_code == 200
    r = requests.post(f"{client.base}/api/m2m/v1/session/logout", headers=headers, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"sessionToken": headers["VZ-M2M-Token"]}
    assert_error(client.m2m("GET"), 401, "INVALID_ACCESS")


def test_logout_needs_both_headers(client: Client) -> None:
    headers = client.headers()
    r = requests.post(
        f"{client.base}/api/m2m/v1/session/logout",
        headers={"Authorization": headers["Authorization"]},
        timeout=TIMEOUT,
    )
    assert_error(r, 401, "INVALID_ACCESS")


# --- auth on callback calls --------------------------------------------------------------


@pytest.mark.parametrize(
    "drop,override",
    [
        ("Authorization", {}),
        (None, {"Authorization": "Bearer forged"}),
        ("VZ-M2M-Token", {}),
        (None, {"VZ-M2M-Token": "forged"}),
    ],
    ids=["no-bearer", "bad-bearer", "no-session", "bad-session"],
)
@pytest.mark.parametrize("family", ["m2m", "fota"])
def test_callback_calls_need_both_valid_headers(
    client: Client, drop: str | None, override: dict[str, str], family: str
) -> None:
    headers = {**client.headers(), **override}
    if drop:
        del headers[drop]
    r = requests.get(
        f"{client.base}/api/{family}/v1/callbacks/{ACCOUNT}", headers=headers, timeout=TIMEOUT
    )
    body = assert_error(r, 401, "INVALID_ACCESS")
    for value in headers.values():
        assert value.split()[-1] not in body["errorMessage"]


def test_session_expires_after_idle_time_and_use_refreshes_it(
    client: Client, clock: FakeClock
) -> None:
    assert client.m2m("GET").status_code == 200
    clock.now += 1100
    assert client.m2m("GET").status_code == 200  # refreshes the idle timer
    clock.now += 1100
    assert client.m2m("GET").status_code == 200
    clock.now += 1201
    assert_error(client.m2m("GET"), 401, "INVALID_ACCESS")


def test_short_real_session_idle_expires() -> None:
    config = SimulatorConfig(credentials=CREDS, session_idle_seconds=0.2)
    with Simulator(config) as simulator:
        client = Client(simulator.base_url)
        assert client.m2m("GET").status_code == 200
        time.sleep(0.35)
        assert_error(client.m2m("GET"), 401, "INVALID_ACCESS")


def test_token_expires_while_the_session_lives(clock: FakeClock) -> None:
    config = SimulatorConfig(credentials=CREDS, token_ttl_seconds=100, session_idle_seconds=1200)
    with Simulator(config, clock=clock) as simulator:
        client = Client(simulator.base_url)
        assert client.m2m("GET").status_code == 200
        clock.now += 99
        assert client.m2m("GET").status_code == 200
        clock.now += 2
        assert_error(client.m2m("GET"), 401, "INVALID_ACCESS")
        fresh = {"Authorization": f"Bearer {client.token()}"}  # same session, new token
        assert client.m2m("GET", headers=fresh).status_code == 200


def test_expire_sessions_method(sim: Simulator, client: Client) -> None:
    assert client.m2m("GET").status_code == 200
    sim.expire_sessions()
    assert_error(client.m2m("GET"), 401, "INVALID_ACCESS")


def test_expire_sessions_admin_endpoint(sim: Simulator, client: Client) -> None:
    assert client.m2m("GET").status_code == 200
    r = requests.post(f"{sim.base_url}/_simulator/sessions/expire", timeout=TIMEOUT)
    assert r.status_code == 200
    assert_error(client.m2m("GET"), 401, "INVALID_ACCESS")
    assert client.login(client.token()).status_code == 200


# --- M2M callbacks -----------------------------------------------------------------------


def test_m2m_register_list_deregister_shapes(client: Client) -> None:
    assert client.m2m("GET").json() == []
    r = client.m2m("POST", json={"name": "DeviceUsage", "url": "https://hooks.example.com/u"})
    assert r.status_code == 200 and r.json() == {
        "accountName": ACCOUNT,
        "serviceName": "DeviceUsage",
    }
    r = client.m2m(
        "POST",
        json={"name": "SMSDeliveryConfirmation", "url": "https://h.example.com:9001/s",
              "username": "ts", "password": "cb-secret"},
    )  # fmt: skip
    assert r.status_code == 200
    assert client.m2m("GET").json() == [
        {"accountName": ACCOUNT, "serviceName": "DeviceUsage", "url": "https://hooks.example.com/u",
         "username": "", "password": ""},
        {"accountName": ACCOUNT, "serviceName": "SMSDeliveryConfirmation",
         "url": "https://h.example.com:9001/s", "username": "ts", "password": "cb-secret"},
    ]  # fmt: skip
    r = client.m2m("DELETE", suffix="/name/DeviceUsage")
    assert r.status_code == 200 and r.json() == {
        "accountName": ACCOUNT,
        "serviceName": "DeviceUsage",
    }
    assert [x["serviceName"] for x in client.m2m("GET").json()] == ["SMSDeliveryConfirmation"]


def test_empty_username_and_password_mean_not_set(client: Client) -> None:
    body = {"name": "QoS", "url": "https://h.example.com/q", "username": "", "password": ""}
    assert client.m2m("POST", json=body).status_code == 200
    assert client.m2m("GET").json() == [
        {"accountName": ACCOUNT, "serviceName": "QoS", "url": "https://h.example.com/q",
         "username": "", "password": ""}
    ]  # fmt: skip


def test_registering_again_replaces(client: Client) -> None:
    first = {
        "name": "DeviceUsage",
        "url": "https://a.example.com/1",
        "username": "u",
        "password": "p",
    }
    assert client.m2m("POST", json=first).status_code == 200
    assert (
        client.m2m(
            "POST", json={"name": "DeviceUsage", "url": "https://b.example.com/2"}
        ).status_code
        == 200
    )
    assert client.m2m("GET").json() == [
        {"accountName": ACCOUNT, "serviceName": "DeviceUsage", "url": "https://b.example.com/2",
         "username": "", "password": ""}
    ]  # fmt: skip


def test_accounts_are_separate(client: Client) -> None:
    client.m2m("POST", json={"name": "DeviceUsage", "url": "https://a.example.com/1"})
    assert client.m2m("GET", account="0000000001-00001").json() == []


@pytest.mark.parametrize("name", ["Fota", "NoSuchService", "deviceusage"])
def test_m2m_refuses_non_m2m_service(client: Client, name: str) -> None:
    assert_error(
        client.m2m("POST", json={"name": name, "url": "https://a.example.com/"}),
        400,
        "INVALID_PARAMETER",
    )
    assert client.m2m("GET").json() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"json": ["DeviceUsage"]},
        {"json": "DeviceUsage"},
        {"json": {"url": "https://a.example.com/"}},
        {"json": {"name": 7, "url": "https://a.example.com/"}},
        {"json": {"name": "DeviceUsage"}},
        {"json": {"name": "DeviceUsage", "url": 5}},
        {"json": {"name": "DeviceUsage", "url": "not a url"}},
        {"json": {"name": "DeviceUsage", "url": "https://a.example.com/", "username": 1}},
        {"json": {"name": "DeviceUsage", "url": "https://a.example.com/", "password": None}},
        {"data": b'{"name": "DeviceUsage", "url": "https://a.example.com/"}',
         "headers": {"Content-Type": "text/plain"}},
        {"data": b'{"name": "DeviceUsage", "url": "https://a.example.com/"}'},
        {"data": b"\xff\xfe", "headers": {"Content-Type": "application/json"}},
    ],
    ids=["bad-json", "array", "string", "no-name", "int-name", "no-url", "int-url", "bad-url",
         "int-username", "null-password", "text-plain", "no-content-type", "not-utf8"],
)  # fmt: skip
def test_m2m_register_refuses_malformed_requests(client: Client, kwargs: dict[str, Any]) -> None:
    assert_error(client.m2m("POST", **kwargs), 400)
    assert client.m2m("GET").json() == []


def test_m2m_error_messages_never_echo_the_callback_password(client: Client) -> None:
    r = client.m2m(
        "POST", json={"name": "Nope", "url": "https://a.example.com/", "password": "s3cr3t-pw"}
    )
    assert r.status_code == 400 and "s3cr3t-pw" not in r.text


def test_m2m_deregister_not_registered_is_400(client: Client) -> None:
    assert_error(client.m2m("DELETE", suffix="/name/DeviceUsage"), 400)


@pytest.mark.parametrize("service", ["Fota", "NoSuchService"])
def test_m2m_deregister_non_m2m_service_is_400(client: Client, service: str) -> None:
    assert_error(client.m2m("DELETE", suffix=f"/name/{service}"), 400, "INVALID_PARAMETER")


# --- FOTA callbacks ----------------------------------------------------------------------


def test_fota_list_is_an_empty_body_when_nothing_is_registered(client: Client) -> None:
    client.m2m("POST", json={"name": "DeviceUsage", "url": "https://a.example.com/"})
    r = client.fota("GET")
    assert r.status_code == 200
    assert r.content == b""


def test_fota_register_list_deregister_shapes(client: Client) -> None:
    url = "https://hooks.example.com/thingspace/fota"
    r = client.fota("POST", json={"name": "Fota", "url": url})
    assert r.status_code == 200 and r.json() == {"aname": ACCOUNT, "name": "Fota", "url": url}
    assert client.fota("GET").json() == [{"aname": ACCOUNT, "name": "Fota", "url": url}]
    assert client.m2m("GET").json() == []  # the families do not mix
    r = client.fota("DELETE", suffix="/name/Fota")
    assert r.status_code == 200 and r.json() == {"success": True}  # the SDK's form
    assert client.fota("GET").content == b""


def test_fota_deregister_not_registered_is_400(client: Client) -> None:
    assert_error(client.fota("DELETE", suffix="/name/Fota"), 400)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "DeviceUsage", "url": "https://a.example.com/"},
        {"name": "Fota"},
        {"name": "Fota", "url": "https://a.example.com/", "password": "x"},
    ],
)
def test_fota_register_refuses_bad_bodies(client: Client, body: dict[str, Any]) -> None:
    assert_error(client.fota("POST", json=body), 400)
    assert client.fota("GET").content == b""


def test_fota_deregister_m2m_service_is_400(client: Client) -> None:
    client.m2m("POST", json={"name": "DeviceUsage", "url": "https://a.example.com/"})
    assert_error(client.fota("DELETE", suffix="/name/DeviceUsage"), 400, "INVALID_PARAMETER")
    assert len(client.m2m("GET").json()) == 1


# --- accounts, paths, methods ------------------------------------------------------------


def test_configured_accounts_refuse_unknown_names() -> None:
    config = SimulatorConfig(credentials=CREDS, accounts=frozenset({ACCOUNT}))
    with Simulator(config) as simulator:
        client = Client(simulator.base_url)
        assert client.m2m("GET").status_code == 200
        assert client.m2m("GET", account="TestAccount-2").status_code == 200  # the sandbox
        assert_error(client.m2m("GET", account="0000000000-99999"), 400, "INVALID_PARAMETER")
        r = client.fota(
            "POST", account="other", json={"name": "Fota", "url": "https://a.example.com/"}
        )
        assert_error(r, 400, "INVALID_PARAMETER")
        assert simulator.snapshot()["accounts"] == {}


def test_account_names_are_percent_decoded_path_segments(sim: Simulator, client: Client) -> None:
    r = client.m2m(
        "POST",
        account="acct%20one%2Fa",
        json={"name": "DeviceUsage", "url": "https://a.example.com/"},
    )
    assert r.status_code == 200 and r.json()["accountName"] == "acct one/a"
    assert list(sim.snapshot()["accounts"]) == ["acct one/a"]
    assert sim.requests()[-1].path == "/api/m2m/v1/callbacks/acct one/a"
    assert sim.requests()[-1].account == "acct one/a"


@pytest.mark.parametrize(
    "path", ["/api/m2m/v1/nothing", "/api/m2m/v2/callbacks/x", "/", "/_simulator/nope"]
)
def test_unknown_paths_are_404_with_an_error_body(client: Client, path: str) -> None:
    assert_error(client.call("GET", path), 404)


@pytest.mark.parametrize(
    "method,path",
    [
        ("PUT", f"/api/m2m/v1/callbacks/{ACCOUNT}"),
        ("GET", f"/api/m2m/v1/callbacks/{ACCOUNT}/name/DeviceUsage"),
        ("DELETE", f"/api/fota/v1/callbacks/{ACCOUNT}"),
        ("GET", "/api/ts/v1/oauth2/token"),
        ("GET", "/_simulator/reset"),
    ],
)
def test_wrong_method_is_405(client: Client, method: str, path: str) -> None:
    r = client.call(method, path)
    assert_error(r, 405)
    assert r.headers["Allow"]


def test_head_and_unknown_verbs_get_json_errors(client: Client) -> None:
    r = client.call("HEAD", f"/api/m2m/v1/callbacks/{ACCOUNT}")
    assert r.status_code == 405 and r.content == b""
    assert_error(client.call("BREW", f"/api/m2m/v1/callbacks/{ACCOUNT}"), 501, "NOT_IMPLEMENTED")


def test_oversized_body_is_refused(client: Client) -> None:
    big = b"{" + b" " * (2 << 20) + b"}"
    r = client.m2m("POST", data=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413)


# --- request log and admin ---------------------------------------------------------------


def test_request_log_records_api_calls_without_headers_or_bodies(
    sim: Simulator, client: Client
) -> None:
    client.m2m(
        "POST",
        json={"name": "DeviceUsage", "url": "https://a.example.com/", "password": "pw-in-body"},
    )
    client.fota("GET")
    requests.get(f"{sim.base_url}/_simulator/state", timeout=TIMEOUT)  # admin calls are not logged
    assert sim.requests() == [
        RequestRecord("POST", "/api/ts/v1/oauth2/token", 200, None),
        RequestRecord("POST", "/api/m2m/v1/session/login", 200, None),
        RequestRecord("POST", f"/api/m2m/v1/callbacks/{ACCOUNT}", 200, ACCOUNT),
        RequestRecord("GET", f"/api/fota/v1/callbacks/{ACCOUNT}", 200, ACCOUNT),
    ]
    logged = requests.get(f"{sim.base_url}/_simulator/requests", timeout=TIMEOUT)
    path = f"/api/m2m/v1/callbacks/{ACCOUNT}"
    assert logged.json()[2] == {"method": "POST", "path": path, "status": 200, "account": ACCOUNT}
    for secret in ("pw-in-body", CREDS.password, CREDS.client_secret, *client.headers().values()):
        assert secret not in logged.text
    assert requests.delete(f"{sim.base_url}/_simulator/requests", timeout=TIMEOUT).json() == []
    assert sim.requests() == []
    client.m2m("GET")
    sim.clear_requests()
    assert sim.requests() == []


def test_admin_state_matches_snapshot(sim: Simulator, client: Client) -> None:
    client.m2m(
        "POST", json={"name": "DeviceUsage", "url": "https://a.example.com/", "username": "u"}
    )
    client.fota("POST", json={"name": "Fota", "url": "https://f.example.com/"})
    expected = {
        "version": 1,
        "accounts": {ACCOUNT: {"DeviceUsage": {"url": "https://a.example.com/", "username": "u"},
                               "Fota": {"url": "https://f.example.com/"}}},
    }  # fmt: skip
    assert sim.snapshot() == expected
    assert requests.get(f"{sim.base_url}/_simulator/state", timeout=TIMEOUT).json() == expected


def test_admin_reset_clears_everything(sim: Simulator, client: Client) -> None:
    client.m2m("POST", json={"name": "DeviceUsage", "url": "https://a.example.com/"})
    requests.post(f"{sim.base_url}/_simulator/faults", json={"latency_ms": 5}, timeout=TIMEOUT)
    r = requests.post(f"{sim.base_url}/_simulator/reset", timeout=TIMEOUT)
    assert r.status_code == 200
    assert sim.snapshot() == {"version": 1, "accounts": {}}
    assert sim.requests() == []
    assert (
        requests.get(f"{sim.base_url}/_simulator/faults", timeout=TIMEOUT).json()["latency_ms"] == 0
    )
    assert_error(client.m2m("GET"), 401, "INVALID_ACCESS")  # sessions are gone


def test_unknown_usernames_lock_nobody(sim: Simulator, client: Client) -> None:
    token = client.token()
    for n in range(6):
        r = requests.post(
            f"{sim.base_url}/api/m2m/v1/session/login",
            json={"username": f"stranger-{n % 2}", "password": "x"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert_error(r, 400, "INVALID_LOGIN")
    assert client.login(token).status_code == 200


def _raw(sim: Simulator, request: bytes) -> bytes:
    """Send bytes as they are (requests would refuse to) and read the whole answer."""
    host, port = sim.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        ("POST /api/ts/v1/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: \u00b2\r\n"
         "Connection: close\r\n\r\n".encode(), b"411"),
        (b"GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"400"),
        ("POST /api/ts/v1/oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \u00e9\u00e9\r\n"
         "Content-Length: 0\r\nConnection: close\r\n\r\n".encode("latin-1"), b"401"),
    ],
    ids=["superscript-length", "bad-target", "non-ascii-basic"],
)  # fmt: skip
def test_malformed_http_gets_an_answer(
    sim: Simulator, request_bytes: bytes, status: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = _raw(sim, request_bytes)
    assert answer.split(b" ", 2)[1] == status, answer[:200]
    assert b'"errorCode"' in answer
    assert "Traceback" not in capsys.readouterr().err


def test_client_hanging_up_prints_nothing(
    sim: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = sim.base_url.removeprefix("http://").split(":")
    for _ in range(5):
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as conn:
            conn.sendall(b"GET /api/m2m/v1/callbacks/A HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    assert capsys.readouterr().err == ""
