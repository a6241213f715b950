"""The ThingSpace client's calls: shapes, retries, errors, redaction, stats, parallelism."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import requests_mock as rm

from reconciler.core import families
from reconciler.core.errors import ApiError, AuthError, TransportError, UsageError
from reconciler.core.model import Registration
from reconciler.core.secrets import Secret
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.endpoint import DEFAULT_ENDPOINT, normalize_endpoint
from reconciler.thingspace.options import ClientOptions
from tests.helpers import InFlightProbe, bare_adapter_session

BASE = "https://ts.example.test"
ACCOUNT = "0252012345-00001"
M2M = f"{BASE}/api/m2m/v1/callbacks/{ACCOUNT}"
FOTA = f"{BASE}/api/fota/v1/callbacks/{ACCOUNT}"
CREDS = Credentials(
    client_id="client-id-1",
    client_secret="client-secret-XYZ",
    username="api-user",
    password="user-password-PQR",
)
BEARER = "bearer-token-AAA"
SESSION = "session-token-BBB"
HOOK_PASSWORD = "hook-password-CCC"


@pytest.fixture
def api(requests_mock: rm.Mocker) -> rm.Mocker:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": BEARER, "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": SESSION})
    return requests_mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


def last(m: rm.Mocker) -> Any:
    """The last request seen (typed loosely: the stubs allow None)."""
    assert m.last_request is not None
    return m.last_request


def make_client(sleeps: list[float] | None = None, **options: Any) -> ThingSpaceClient:
    return ThingSpaceClient(
        BASE,
        CREDS,
        options=ClientOptions(**options),
        sleep=(sleeps if sleeps is not None else []).append,
        clock=lambda: 0.0,
        rng=random.Random(7),
    )


def api_calls(m: rm.Mocker, method: str | None = None) -> list[Any]:
    auth_paths = {TOKEN_PATH, LOGIN_PATH}
    return [
        r
        for r in m.request_history
        if r.path not in auth_paths and (method is None or r.method == method)
    ]


# -- shapes of both families ------------------------------------------------------------


def test_list_m2m_returns_raw_items(api: rm.Mocker) -> None:
    items = [{"accountName": ACCOUNT, "serviceName": "DeviceUsage", "url": "https://h/u"}]
    api.get(M2M, json=items)
    assert make_client().list_callbacks(ACCOUNT, families.M2M) == items
    assert last(api).headers["VZ-M2M-Token"] == SESSION


def test_list_fota_returns_raw_items(api: rm.Mocker) -> None:
    items = [{"aname": ACCOUNT, "name": "Fota", "url": "https://h/f"}]
    api.get(FOTA, json=items)
    assert make_client().list_callbacks(ACCOUNT, families.FOTA) == items


@pytest.mark.parametrize("body", ["", "   \n", "null", "[]"])
def test_fota_empty_body_is_empty_list(api: rm.Mocker, body: str) -> None:
    api.get(FOTA, text=body)
    assert make_client().list_callbacks(ACCOUNT, families.FOTA) == []


@pytest.mark.parametrize(
    ("family", "body", "expected"),
    [
        (families.M2M, "", "not JSON"),
        (families.M2M, "<html>oops</html>", "not JSON"),
        (families.M2M, '{"serviceName": "x"}', "expected a JSON array"),
        (families.M2M, '"text"', "expected a JSON array"),
        (families.M2M, "[1, 2]", "item 0 is not an object"),
        (families.FOTA, "garbage", "not JSON"),
        (families.FOTA, '{"aname": "x"}', "expected a JSON array"),
        (families.FOTA, '[{"name": "Fota"}, "x"]', "item 1 is not an object"),
    ],
)
def test_garbage_list_body_is_api_error(
    api: rm.Mocker, family: families.FamilySpec, body: str, expected: str
) -> None:
    api.get(M2M if family is families.M2M else FOTA, text=body)
    with pytest.raises(ApiError) as info:
        make_client().list_callbacks(ACCOUNT, family)
    assert "unexpected response" in str(info.value)
    assert expected in str(info.value)
    assert str(info.value).startswith("GET /api/")


def test_register_m2m_body(api: rm.Mocker) -> None:
    api.post(M2M, json={"accountName": ACCOUNT, "serviceName": "SMSDeliveryConfirmation"})
    reg = Registration(url="https://h/sms", username="hook", password=Secret(HOOK_PASSWORD))
    make_client().register(ACCOUNT, families.M2M, "SMSDeliveryConfirmation", reg)
    request = last(api)
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {BEARER}"
    assert request.headers["VZ-M2M-Token"] == SESSION
    assert request.json() == {
        "name": "SMSDeliveryConfirmation",
        "url": "https://h/sms",
        "username": "hook",
        "password": HOOK_PASSWORD,
    }


def test_register_m2m_omits_absent_fields(api: rm.Mocker) -> None:
    api.post(M2M, text="")  # 200 without a body is success too
    make_client().register(ACCOUNT, families.M2M, "DeviceUsage", Registration(url="https://h/u"))
    assert last(api).json() == {"name": "DeviceUsage", "url": "https://h/u"}


def test_register_fota_sends_name_and_url_only(api: rm.Mocker) -> None:
    api.post(FOTA, json={"aname": ACCOUNT, "name": "Fota", "url": "https://h/f"})
    reg = Registration(url="https://h/f", username="ignored", password=Secret("ignored-pw"))
    make_client().register(ACCOUNT, families.FOTA, "Fota", reg)
    assert last(api).json() == {"name": "Fota", "url": "https://h/f"}


@pytest.mark.parametrize(("family", "base"), [(families.M2M, M2M), (families.FOTA, FOTA)])
def test_deregister_paths(api: rm.Mocker, family: families.FamilySpec, base: str) -> None:
    api.delete(f"{base}/name/Svc", text="")
    make_client().deregister(ACCOUNT, family, "Svc")
    assert last(api).method == "DELETE"
    assert urlsplit(last(api).url).path == urlsplit(f"{base}/name/Svc").path


def test_names_are_percent_encoded(api: rm.Mocker) -> None:
    api.get(rm.ANY, json=[])
    api.delete(rm.ANY, text="")
    client = make_client()
    client.list_callbacks("acc/1 ?#%", families.M2M)
    assert urlsplit(last(api).url).path == "/api/m2m/v1/callbacks/acc%2F1%20%3F%23%25"
    client.deregister("0252/x", families.FOTA, "a b/c")
    assert urlsplit(last(api).url).path == "/api/fota/v1/callbacks/0252%2Fx/name/a%20b%2Fc"


# -- errors and retries -----------------------------------------------------------------


def test_400_is_final_and_carries_error_body(api: rm.Mocker, sleeps: list[float]) -> None:
    api.post(
        M2M,
        status_code=400,
        json={"errorCode": "INVALID_PARAMETER", "errorMessage": "url is not reachable"},
    )
    with pytest.raises(ApiError) as info:
        make_client(sleeps).register(ACCOUNT, families.M2M, "DeviceUsage", Registration(url="x"))
    error = info.value
    assert (error.method, error.path, error.status) == ("POST", M2M.removeprefix(BASE), 400)
    assert error.error_code == "INVALID_PARAMETER"
    assert error.error_message == "url is not reachable"
    assert str(error) == (
        "POST /api/m2m/v1/callbacks/0252012345-00001: HTTP 400 INVALID_PARAMETER: "
        "url is not reachable"
    )
    assert len(api_calls(api)) == 1
    assert sleeps == []


def test_429_retry_after_seconds_is_honoured(api: rm.Mocker, sleeps: list[float]) -> None:
    api.get(M2M, [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": []}])
    assert make_client(sleeps).list_callbacks(ACCOUNT, families.M2M) == []
    assert sleeps == [7.0]


def test_retry_after_http_date_is_capped(api: rm.Mocker, sleeps: list[float]) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    api.get(M2M, [{"status_code": 503, "headers": {"Retry-After": later}}, {"json": []}])
    make_client(sleeps, retry_after_max=42.0).list_callbacks(ACCOUNT, families.M2M)
    assert sleeps == [42.0]


def test_503_then_success_backs_off_with_jitter(api: rm.Mocker, sleeps: list[float]) -> None:
    api.get(M2M, [{"status_code": 503}, {"status_code": 502}, {"status_code": 500}, {"json": []}])
    client = make_client(sleeps, backoff_base=1.0, breaker_threshold=4)
    assert client.list_callbacks(ACCOUNT, families.M2M) == []
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        assert 0.0 <= delay <= 1.0 * 2**attempt
    assert client.stats().retries == 3


def test_connection_error_is_retried(api: rm.Mocker, sleeps: list[float]) -> None:
    api.get(
        M2M,
        [
            {"exc": requests.exceptions.ConnectionError},
            {"exc": requests.exceptions.ReadTimeout},
            {"json": []},
        ],
    )
    assert make_client(sleeps).list_callbacks(ACCOUNT, families.M2M) == []
    assert len(api_calls(api, "GET")) == 3
    assert len(sleeps) == 2


def test_exhausted_5xx_is_api_error(api: rm.Mocker, sleeps: list[float]) -> None:
    api.get(M2M, status_code=503, json={"errorCode": "SERVICE_UNAVAILABLE"})
    with pytest.raises(ApiError) as info:
        make_client(sleeps, max_attempts=4, breaker_threshold=5).list_callbacks(
            ACCOUNT, families.M2M
        )
    assert not isinstance(info.value, TransportError)
    assert info.value.status == 503
    assert "GET /api/m2m/v1/callbacks/0252012345-00001" in str(info.value)
    assert "gave up after 4 attempts" in str(info.value)
    assert len(api_calls(api, "GET")) == 4
    assert len(sleeps) == 3


def test_exhausted_connection_errors_are_transport_error(
    api: rm.Mocker, sleeps: list[float]
) -> None:
    api.delete(f"{FOTA}/name/Fota", exc=requests.exceptions.ConnectTimeout)
    with pytest.raises(TransportError) as info:
        make_client(sleeps, max_attempts=3, breaker_threshold=4).deregister(
            ACCOUNT, families.FOTA, "Fota"
        )
    assert str(info.value).startswith("DELETE /api/fota/v1/callbacks/0252012345-00001/name/Fota:")
    assert "timed out connecting to ts.example.test:443" in str(info.value)
    assert len(api_calls(api, "DELETE")) == 3


def test_tls_error_is_not_retried(api: rm.Mocker, sleeps: list[float]) -> None:
    api.get(M2M, exc=requests.exceptions.SSLError)
    with pytest.raises(TransportError, match="TLS"):
        make_client(sleeps).list_callbacks(ACCOUNT, families.M2M)
    assert len(api_calls(api)) == 1 and sleeps == []


def test_redirects_are_not_followed(api: rm.Mocker) -> None:
    api.get(M2M, status_code=302, headers={"Location": "https://elsewhere.test/x"})
    with pytest.raises(ApiError) as info:
        make_client().list_callbacks(ACCOUNT, families.M2M)
    assert info.value.status == 302
    assert all(urlsplit(r.url).hostname == "ts.example.test" for r in api.request_history)


def test_non_json_error_body_is_clipped(api: rm.Mocker) -> None:
    api.get(M2M, status_code=404, text="<html>" + "x" * 5000 + "</html>")
    with pytest.raises(ApiError) as info:
        make_client().list_callbacks(ACCOUNT, families.M2M)
    assert "non-JSON error body" in str(info.value)
    assert len(str(info.value)) < 300


# -- ambiguous deletes ------------------------------------------------------------------


def test_ambiguous_delete_confirmed_by_listing(api: rm.Mocker) -> None:
    api.delete(f"{M2M}/name/DeviceUsage", [{"status_code": 504}, {"status_code": 400}])
    api.get(M2M, json=[{"accountName": ACCOUNT, "serviceName": "AlertService", "url": "u"}])
    make_client().deregister(ACCOUNT, families.M2M, "DeviceUsage")
    assert len(api_calls(api, "GET")) == 1


def test_ambiguous_delete_still_registered_raises(api: rm.Mocker) -> None:
    api.delete(
        f"{FOTA}/name/Fota",
        [{"exc": requests.exceptions.ReadTimeout}, {"status_code": 400, "json": {}}],
    )
    api.get(FOTA, json=[{"aname": ACCOUNT, "name": "Fota", "url": "u"}])
    with pytest.raises(ApiError) as info:
        make_client().deregister(ACCOUNT, families.FOTA, "Fota")
    assert info.value.status == 400


def test_clear_400_on_delete_is_final_without_listing(api: rm.Mocker) -> None:
    api.delete(f"{M2M}/name/DeviceUsage", status_code=400, json={"errorCode": "INVALID_PARAMETER"})
    with pytest.raises(ApiError, match="INVALID_PARAMETER"):
        make_client().deregister(ACCOUNT, families.M2M, "DeviceUsage")
    assert api_calls(api, "GET") == []


def test_ambiguous_register_confirmed_by_listing(api: rm.Mocker) -> None:
    # The first POST timed out but took effect; the API refuses the repeat.
    api.post(M2M, [{"exc": requests.exceptions.ReadTimeout}, {"status_code": 400, "json": {}}])
    api.get(M2M, json=[{"accountName": ACCOUNT, "serviceName": "QoS", "url": "https://h/q",
                        "username": "", "password": ""}])  # fmt: skip
    make_client().register(ACCOUNT, families.M2M, "QoS", Registration(url="https://h/q"))
    assert len(api_calls(api, "GET")) == 1


def test_ambiguous_register_not_in_listing_raises(api: rm.Mocker) -> None:
    api.post(M2M, [{"status_code": 503}, {"status_code": 400, "json": {"errorCode": "NO"}}])
    api.get(M2M, json=[{"accountName": ACCOUNT, "serviceName": "QoS", "url": "https://other"}])
    with pytest.raises(ApiError, match="NO"):
        make_client().register(ACCOUNT, families.M2M, "QoS", Registration(url="https://h/q"))


def test_clear_400_on_register_is_final_without_listing(api: rm.Mocker) -> None:
    api.post(M2M, status_code=400, json={"errorCode": "INVALID_PARAMETER"})
    with pytest.raises(ApiError, match="INVALID_PARAMETER"):
        make_client().register(ACCOUNT, families.M2M, "QoS", Registration(url="https://h/q"))
    assert api_calls(api, "GET") == []


# -- secrets ----------------------------------------------------------------------------

SECRETS = ("client-secret-XYZ", "user-password-PQR", BEARER, SESSION, HOOK_PASSWORD)


def _assert_no_secret(error: BaseException) -> None:
    texts = [str(error), repr(error), json.dumps(vars(error), default=str)]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@pytest.mark.parametrize("status", [400, 500])
def test_error_message_echoing_secrets_is_scrubbed(api: rm.Mocker, status: int) -> None:
    echo = " ".join(SECRETS)
    api.post(M2M, status_code=status, json={"errorCode": f"E {BEARER}", "errorMessage": echo})
    reg = Registration(url="https://h/u", username="u", password=Secret(HOOK_PASSWORD))
    with pytest.raises(ApiError) as info:
        make_client(max_attempts=2).register(ACCOUNT, families.M2M, "DeviceUsage", reg)
    _assert_no_secret(info.value)
    assert "(sensitive)" in str(info.value)


def test_non_json_body_echoing_secrets_is_scrubbed(api: rm.Mocker) -> None:
    api.post(M2M, status_code=400, text=f"bad password {HOOK_PASSWORD} for token {SESSION}")
    reg = Registration(url="https://h/u", password=Secret(HOOK_PASSWORD))
    with pytest.raises(ApiError) as info:
        make_client().register(ACCOUNT, families.M2M, "DeviceUsage", reg)
    _assert_no_secret(info.value)


def test_second_401_echoing_secrets_is_scrubbed(api: rm.Mocker) -> None:
    api.get(M2M, status_code=401, json={"errorMessage": f"token {SESSION} / {BEARER} expired"})
    with pytest.raises(ApiError) as info:
        make_client().list_callbacks(ACCOUNT, families.M2M)
    _assert_no_secret(info.value)


def test_transport_error_has_no_secret(api: rm.Mocker) -> None:
    api.get(M2M, exc=requests.exceptions.ConnectionError(f"boom {BEARER}"))
    with pytest.raises(TransportError) as info:
        make_client(max_attempts=1).list_callbacks(ACCOUNT, families.M2M)
    _assert_no_secret(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


# -- stats and parallelism --------------------------------------------------------------


def test_stats_count_methods_kinds_and_retries(api: rm.Mocker) -> None:
    api.get(M2M, [{"status_code": 503}, {"json": []}])
    api.get(FOTA, text="")
    api.post(M2M, json={})
    api.delete(f"{M2M}/name/DeviceUsage", json={})
    client = make_client()
    client.list_callbacks(ACCOUNT, families.M2M)
    client.list_callbacks(ACCOUNT, families.FOTA)
    client.register(ACCOUNT, families.M2M, "DeviceUsage", Registration(url="https://h/u"))
    client.deregister(ACCOUNT, families.M2M, "DeviceUsage")
    stats = client.stats()
    assert dict(stats.by_kind) == {
        ("POST", "auth"): 2,
        ("GET", "api"): 3,
        ("POST", "api"): 1,
        ("DELETE", "api"): 1,
    }
    assert dict(stats.by_method) == {"POST": 3, "GET": 3, "DELETE": 1}
    assert stats.count(kind="api") == 5
    assert stats.count("GET") == 3
    assert (stats.retries, stats.token_grants, stats.logins, stats.relogins) == (1, 1, 1, 0)


def test_parallelism_bounds_requests_in_flight() -> None:
    adapter, session = bare_adapter_session(BASE, bearer=BEARER, session_token=SESSION)
    probe = InFlightProbe()
    adapter.register_uri("GET", M2M, json=probe)
    client = ThingSpaceClient(BASE, CREDS, options=ClientOptions(parallelism=3), session=session)
    threads = [
        threading.Thread(target=client.list_callbacks, args=(ACCOUNT, families.M2M))
        for _ in range(12)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.method == "GET" for r in adapter.request_history) == 12
    assert 2 <= probe.peak <= 3  # concurrency happened, and never past the bound


# -- endpoint and options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DEFAULT_ENDPOINT, "https://thingspace.verizon.com"),
        ("https://thingspace.verizon.com/", "https://thingspace.verizon.com"),
        ("HTTPS://Example.COM:8443", "https://example.com:8443"),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
        ("http://127.5.6.7:8787/", "http://127.5.6.7:8787"),
        ("http://localhost:8787", "http://localhost:8787"),
        ("http://[::1]:8787", "http://[::1]:8787"),
    ],
)
def test_normalize_endpoint_accepts(url: str, expected: str) -> None:
    assert normalize_endpoint(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "thingspace.verizon.com",
        "ftp://thingspace.verizon.com",
        "http://thingspace.verizon.com",
        "http://10.0.0.1:8787",
        "http://localhost.evil.test",
        "http://127.0.0.1.nip.io",
        "https://thingspace.verizon.com/api",
        "https://thingspace.verizon.com?x=1",
        "https://thingspace.verizon.com/#frag",
        "https://user:s3cret@thingspace.verizon.com",
        "https://user:s3cret@host:99999",  # unparsable port: still never echoed
        "https://user:s3cret@ho[st",
        "https://thingspace.verizon.com/?access_token=s3cret",
        "https://thingspace.verizon.com/#s3cret",
        "https://thingspace.verizon.com:99999",
        "https://thing space.com",
        "https://",
    ],
)
def test_normalize_endpoint_rejects(url: str) -> None:
    with pytest.raises(UsageError) as info:
        normalize_endpoint(url)
    message = str(info.value)
    assert "\n" not in message and message.startswith("invalid endpoint")
    assert "s3cret" not in message


def test_client_validates_endpoint_and_options() -> None:
    with pytest.raises(UsageError):
        ThingSpaceClient("http://example.com", CREDS)
    with pytest.raises(UsageError):
        ClientOptions(parallelism=0)
    with pytest.raises(UsageError):
        ClientOptions(max_attempts=0)


@pytest.mark.parametrize(
    "retry_after", ["Mon, 01 Jan 99999999999 00:00:00 GMT", "1e400", "nan", "-5", "soon"]
)
def test_odd_retry_after_values_never_escape(
    api: rm.Mocker, sleeps: list[float], retry_after: str
) -> None:
    api.get(M2M, [{"status_code": 429, "headers": {"Retry-After": retry_after}}, {"json": []}])
    assert make_client(sleeps).list_callbacks(ACCOUNT, families.M2M) == []
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 120


@pytest.mark.parametrize("status", [200, 400])
def test_deeply_nested_json_is_a_typed_error(api: rm.Mocker, status: int) -> None:
    api.get(M2M, status_code=status, content=b"[" * 100_000)
    with pytest.raises(ApiError):
        make_client().list_callbacks(ACCOUNT, families.M2M)


def test_unencodable_credentials_are_a_typed_error_without_the_secret(api: rm.Mocker) -> None:
    creds = Credentials(client_id="id", client_secret="s\u20acret-value", username="u",
                        password="pw-value")  # fmt: skip
    client = ThingSpaceClient(BASE, creds, sleep=lambda s: None)
    with pytest.raises(ApiError) as info:  # an AuthError: it failed getting a bearer
        client.list_callbacks(ACCOUNT, families.M2M)
    assert "could not be encoded" in str(info.value)
    assert "ret-value" not in repr(info.value) and info.value.__context__ is None


# -- the desired state already reached (someone else got there first) -------------------

NOT_REGISTERED = {
    "errorCode": "INVALID_PARAMETER",
    "errorMessage": f"service 'DeviceUsage' is not registered for account '{ACCOUNT}'",
}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, NOT_REGISTERED),  # what the simulator answers
        (400, {"errorCode": "NOT_FOUND", "errorMessage": "callback not found"}),
        (404, {}),
        (404, {"errorCode": "INVALID_PARAMETER", "errorMessage": "no callback"}),
    ],
)
def test_delete_of_what_someone_else_removed_is_success(
    api: rm.Mocker, status: int, body: dict[str, str]
) -> None:
    api.delete(f"{M2M}/name/DeviceUsage", status_code=status, json=body)
    api.get(M2M, json=[{"accountName": ACCOUNT, "serviceName": "QoS", "url": "https://h/q"}])
    make_client().deregister(ACCOUNT, families.M2M, "DeviceUsage")
    assert len(api_calls(api, "DELETE")) == 1 and len(api_calls(api, "GET")) == 1


def test_delete_said_not_registered_but_listed_is_a_failure(api: rm.Mocker) -> None:
    api.delete(f"{M2M}/name/DeviceUsage", status_code=400, json=NOT_REGISTERED)
    api.get(M2M, json=[{"accountName": ACCOUNT, "serviceName": "DeviceUsage", "url": "u"}])
    with pytest.raises(ApiError) as info:
        make_client().deregister(ACCOUNT, families.M2M, "DeviceUsage")
    assert info.value.status == 400 and "is not registered" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"errorCode": "INVALID_PARAMETER", "errorMessage": "bad service name"}),
        (403, {"errorCode": "FORBIDDEN", "errorMessage": "not registered for this user"}),
        (500, NOT_REGISTERED),
    ],
)
def test_other_delete_refusals_stay_failures_without_listing(
    api: rm.Mocker, status: int, body: dict[str, str]
) -> None:
    api.delete(f"{M2M}/name/DeviceUsage", status_code=status, json=body)
    with pytest.raises(ApiError) as info:
        make_client(max_attempts=1).deregister(ACCOUNT, families.M2M, "DeviceUsage")
    assert info.value.status == status
    assert api_calls(api, "GET") == []


def test_delete_refusal_is_reported_when_the_listing_fails_too(api: rm.Mocker) -> None:
    api.delete(
        f"{FOTA}/name/Fota", status_code=400, json={"errorMessage": "Fota is not registered"}
    )
    api.get(FOTA, status_code=400, json={"errorCode": "INVALID_ACCOUNT"})
    with pytest.raises(ApiError) as info:
        make_client().deregister(ACCOUNT, families.FOTA, "Fota")
    assert info.value.method == "DELETE" and "is not registered" in str(info.value)


ALREADY = {"errorCode": "DUPLICATE", "errorMessage": "service QoS is already registered"}


@pytest.mark.parametrize(("status", "body"), [(400, ALREADY), (409, {}), (409, ALREADY)])
def test_create_of_what_someone_else_registered_exactly_is_success(
    api: rm.Mocker, status: int, body: dict[str, str]
) -> None:
    api.post(M2M, status_code=status, json=body)
    api.get(M2M, json=[{"accountName": ACCOUNT, "serviceName": "QoS", "url": "https://h/q",
                        "username": "hook-user", "password": ""}])  # fmt: skip
    reg = Registration(url="https://h/q", username="hook-user")
    make_client().register(ACCOUNT, families.M2M, "QoS", reg)
    assert len(api_calls(api, "POST")) == 1 and len(api_calls(api, "GET")) == 1


@pytest.mark.parametrize(
    "listed",
    [
        [{"accountName": ACCOUNT, "serviceName": "QoS", "url": "https://other/q"}],
        [{"accountName": ACCOUNT, "serviceName": "QoS", "url": "https://h/q", "username": "x"}],
        [],
    ],
)
def test_duplicate_refusal_for_a_different_registration_is_a_failure(
    api: rm.Mocker, listed: list[dict[str, str]]
) -> None:
    api.post(M2M, status_code=409, json=ALREADY)
    api.get(M2M, json=listed)
    with pytest.raises(ApiError) as info:
        make_client().register(ACCOUNT, families.M2M, "QoS", Registration(url="https://h/q"))
    assert info.value.status == 409 and "already registered" in str(info.value)


def test_duplicate_refusal_never_shows_the_password(api: rm.Mocker) -> None:
    api.post(M2M, status_code=400, json={"errorMessage": f"already registered: {HOOK_PASSWORD}"})
    api.get(M2M, json=[])
    reg = Registration(url="https://h/q", password=Secret(HOOK_PASSWORD))
    with pytest.raises(ApiError) as info:
        make_client().register(ACCOUNT, families.M2M, "QoS", reg)
    assert HOOK_PASSWORD not in str(info.value)


def test_a_refused_login_while_confirming_is_not_hidden(api: rm.Mocker) -> None:
    api.delete(f"{M2M}/name/DeviceUsage", status_code=400, json=NOT_REGISTERED)
    api.get(M2M, status_code=401, json={"errorCode": "INVALID_ACCESS"})
    api.post(
        BASE + LOGIN_PATH,
        [{"json": {"sessionToken": SESSION}}, {"status_code": 400, "json": {"errorCode": "BAD"}}],
    )
    with pytest.raises(AuthError):
        make_client().deregister(ACCOUNT, families.M2M, "DeviceUsage")
