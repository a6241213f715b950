"""Authentication of the ThingSpace client: token, M2M login, sharing, refusal memory."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import requests_mock as rm

from reconciler.core.errors import ApiError, AuthError
from reconciler.core.families import FOTA, M2M
from reconciler.thingspace.auth import LOGIN_PATH, LOGOUT_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.options import ClientOptions

BASE = "https://ts.example.test"
LIST_URL = f"{BASE}/api/m2m/v1/callbacks/0252012345-00001"
ACCOUNT = "0252012345-00001"
CREDS = Credentials(
    client_id="client-id-1",
    client_secret="client-secret-XYZ",
    username="api-user",
    password="user-password-PQR",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_responses(count: int = 20, expires_in: int = 3600) -> list[dict[str, Any]]:
    return [
        {"json": {"access_token": f"bearer-{i}", "token_type": "bearer", "expires_in": expires_in}}
        for i in range(1, count + 1)
    ]


def login_responses(count: int = 20) -> list[dict[str, Any]]:
    return [{"json": {"sessionToken": f"session-{i}"}} for i in range(1, count + 1)]


@pytest.fixture
def api(requests_mock: rm.Mocker) -> rm.Mocker:
    requests_mock.post(BASE + TOKEN_PATH, token_responses())
    requests_mock.post(BASE + LOGIN_PATH, login_responses())
    requests_mock.post(BASE + LOGOUT_PATH, json={})
    requests_mock.get(LIST_URL, json=[])
    return requests_mock


def last(m: rm.Mocker) -> Any:
    """The last request seen (typed loosely: the stubs allow None)."""
    assert m.last_request is not None
    return m.last_request


def make_client(
    *,
    clock: Callable[[], float] | None = None,
    sleeps: list[float] | None = None,
    **options: Any,
) -> ThingSpaceClient:
    recorded = sleeps if sleeps is not None else []
    return ThingSpaceClient(
        BASE,
        CREDS,
        options=ClientOptions(**options),
        sleep=recorded.append,
        clock=clock or FakeClock(),
    )


def calls(m: rm.Mocker, path: str, method: str = "POST") -> list[Any]:
    return [r for r in m.request_history if r.method == method and r.path == path.lower()]


def test_auth_flow_order_and_headers(api: rm.Mocker) -> None:
    client = make_client()
    assert client.list_callbacks(ACCOUNT, M2M) == []

    token, login, listing = api.request_history
    assert (token.method, token.path) == ("POST", TOKEN_PATH)
    basic = base64.b64encode(b"client-id-1:client-secret-XYZ").decode()
    assert token.headers["Authorization"] == f"Basic {basic}"
    assert parse_qs(token.text) == {"grant_type": ["client_credentials"]}
    assert "VZ-M2M-Token" not in token.headers

    assert (login.method, login.path) == ("POST", LOGIN_PATH)
    assert login.headers["Authorization"] == "Bearer bearer-1"
    assert login.headers["Content-Type"] == "application/json"
    assert login.json() == {"username": "api-user", "password": "user-password-PQR"}
    assert "VZ-M2M-Token" not in login.headers

    assert listing.method == "GET"
    assert listing.headers["Authorization"] == "Bearer bearer-1"
    assert listing.headers["VZ-M2M-Token"] == "session-1"
    for request in api.request_history:
        timeout: Any = request.timeout
        assert timeout == (5.0, 8.0)


def test_tokens_are_reused_between_calls(api: rm.Mocker) -> None:
    client = make_client()
    for _ in range(3):
        client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, TOKEN_PATH)) == 1
    assert len(calls(api, LOGIN_PATH)) == 1
    stats = client.stats()
    assert stats.count("GET", "api") == 3
    assert stats.count("POST", "auth") == 2
    assert (stats.token_grants, stats.logins, stats.relogins) == (1, 1, 0)


def test_bearer_renewed_shortly_before_expiry(api: rm.Mocker) -> None:
    clock = FakeClock()
    client = make_client(clock=clock, deadline=None)
    client.list_callbacks(ACCOUNT, M2M)
    clock.now += 3000  # well inside the hour
    client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, TOKEN_PATH)) == 1
    clock.now += 550  # 3550 s: within the renewal margin of a 3600 s token
    client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, TOKEN_PATH)) == 2
    assert len(calls(api, LOGIN_PATH)) == 1  # the M2M session is kept
    assert last(api).headers["Authorization"] == "Bearer bearer-2"
    assert last(api).headers["VZ-M2M-Token"] == "session-1"


def test_threads_share_one_login(requests_mock: rm.Mocker) -> None:
    def slow_token(request: Any, context: Any) -> dict[str, Any]:
        time.sleep(0.05)  # keep the other threads waiting on the login
        return {"access_token": "bearer-1", "expires_in": 3600}

    requests_mock.post(BASE + TOKEN_PATH, json=slow_token)
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "session-1"})
    requests_mock.get(LIST_URL, json=[])
    client = make_client(parallelism=8)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            client.list_callbacks(ACCOUNT, M2M)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(calls(requests_mock, TOKEN_PATH)) == 1
    assert len(calls(requests_mock, LOGIN_PATH)) == 1
    assert len(calls(requests_mock, LIST_URL.removeprefix(BASE), "GET")) == 8


def test_401_relogs_once_and_retries(api: rm.Mocker) -> None:
    api.get(LIST_URL, [{"status_code": 401, "json": {"errorCode": "INVALID_ACCESS"}}, {"json": []}])
    client = make_client()
    assert client.list_callbacks(ACCOUNT, M2M) == []
    assert len(calls(api, TOKEN_PATH)) == 2
    assert len(calls(api, LOGIN_PATH)) == 2
    first, second = calls(api, LIST_URL.removeprefix(BASE), "GET")
    assert first.headers["VZ-M2M-Token"] == "session-1"
    assert second.headers["VZ-M2M-Token"] == "session-2"
    assert second.headers["Authorization"] == "Bearer bearer-2"
    assert client.stats().relogins == 1


def test_a_401_that_persists_after_a_new_login_stops_the_run(api: rm.Mocker) -> None:
    api.get(LIST_URL, status_code=401, json={"errorCode": "INVALID_ACCESS", "errorMessage": "no"})
    client = make_client()
    with pytest.raises(AuthError) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert "GET /api/m2m/v1/callbacks/0252012345-00001" in str(info.value)
    assert "refused again right after a new login" in str(info.value)
    assert info.value.status == 401
    assert len(calls(api, LIST_URL.removeprefix(BASE), "GET")) == 2
    assert len(calls(api, LOGIN_PATH)) == 2
    # Remembered for the run: any later call fails at once, without a request.
    seen = len(api.request_history)
    with pytest.raises(AuthError, match="refused again right after a new login"):
        client.register(ACCOUNT, FOTA, "Fota", _fota())
    assert len(api.request_history) == seen


def test_401_long_after_a_relogin_logs_in_again(api: rm.Mocker) -> None:
    clock = FakeClock()
    api.get(LIST_URL, [{"status_code": 401}, {"json": []}, {"status_code": 401}, {"json": []}])
    client = make_client(clock=clock, deadline=None)
    client.list_callbacks(ACCOUNT, M2M)
    clock.now += 1300  # the session idled out long after the re-login
    client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, LOGIN_PATH)) == 3


def test_stale_401_reuses_a_newer_login() -> None:
    """Two threads holding the same expired tokens: only the first re-authenticates."""
    with rm.Mocker() as m:
        m.post(BASE + TOKEN_PATH, token_responses())
        m.post(BASE + LOGIN_PATH, login_responses())
        client = make_client()
        auth = client._auth
        stale = auth.current()
        fresh = auth.renew(stale, _no_refusal)
        again = auth.renew(stale, _no_refusal)  # the second thread's 401, to the old tokens
        assert again.session == fresh.session == "session-2"
        assert len(calls(m, LOGIN_PATH)) == 2
        assert client.stats().relogins == 1


@pytest.mark.parametrize("status", [400, 401, 403])
def test_refused_login_is_never_retried_and_remembered(api: rm.Mocker, status: int) -> None:
    api.post(
        BASE + LOGIN_PATH,
        status_code=status,
        json={"errorCode": "INVALID_ACCESS", "errorMessage": "bad credentials"},
    )
    sleeps: list[float] = []
    client = make_client(sleeps=sleeps)
    with pytest.raises(AuthError) as first:
        client.list_callbacks(ACCOUNT, M2M)
    assert "POST /api/m2m/v1/session/login" in str(first.value)
    assert "INVALID_ACCESS" in str(first.value)
    seen = len(api.request_history)
    assert len(calls(api, LOGIN_PATH)) == 1
    assert sleeps == []

    with pytest.raises(AuthError) as later:
        client.register(ACCOUNT, FOTA, "Fota", _fota())
    assert str(later.value) == str(first.value)

    from_thread: list[BaseException] = []
    worker = threading.Thread(
        target=lambda: _capture(from_thread, client.list_callbacks, ACCOUNT, FOTA)
    )
    worker.start()
    worker.join()
    assert len(from_thread) == 1 and isinstance(from_thread[0], AuthError)
    assert len(api.request_history) == seen  # no further request of any kind


@pytest.mark.parametrize("status", [400, 401])
def test_refused_client_credentials_are_remembered(api: rm.Mocker, status: int) -> None:
    api.post(BASE + TOKEN_PATH, status_code=status, json={"error": "invalid_client"})
    client = make_client()
    for _ in range(3):
        with pytest.raises(AuthError):
            client.list_callbacks(ACCOUNT, M2M)
    assert len(api.request_history) == 1
    assert calls(api, LOGIN_PATH) == []


def test_refused_relogin_after_401_is_remembered(api: rm.Mocker) -> None:
    api.post(
        BASE + LOGIN_PATH,
        [{"json": {"sessionToken": "session-1"}}, {"status_code": 401, "json": {}}],
    )
    api.get(LIST_URL, status_code=401, json={})
    client = make_client()
    with pytest.raises(AuthError):
        client.list_callbacks(ACCOUNT, M2M)
    with pytest.raises(AuthError):
        client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, LOGIN_PATH)) == 2
    assert len(calls(api, LIST_URL.removeprefix(BASE), "GET")) == 1


def test_login_503_then_success_is_retried(api: rm.Mocker) -> None:
    api.post(
        BASE + LOGIN_PATH,
        [
            {"status_code": 503, "json": {"errorCode": "UNAVAILABLE"}},
            {"json": {"sessionToken": "session-1"}},
        ],
    )
    sleeps: list[float] = []
    client = make_client(sleeps=sleeps)
    assert client.list_callbacks(ACCOUNT, M2M) == []
    assert len(calls(api, LOGIN_PATH)) == 2
    assert len(sleeps) == 1
    assert client.stats().retries == 1


def test_token_connection_error_is_retried(api: rm.Mocker) -> None:
    api.post(
        BASE + TOKEN_PATH,
        [
            {"exc": requests.exceptions.ConnectTimeout},
            {"json": {"access_token": "bearer-1", "expires_in": 3600}},
        ],
    )
    client = make_client()
    assert client.list_callbacks(ACCOUNT, M2M) == []
    assert len(calls(api, TOKEN_PATH)) == 2


def test_login_unavailable_is_remembered(api: rm.Mocker) -> None:
    # A login that timed out may have counted at Verizon: after the attempts of one
    # call, this client never tries to log in again.
    api.post(
        BASE + LOGIN_PATH,
        [{"exc": requests.exceptions.ConnectionError}] * 2 + [{"json": {"sessionToken": "s"}}],
    )
    client = make_client(max_attempts=2)
    with pytest.raises(AuthError) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert "POST /api/m2m/v1/session/login" in str(info.value)
    assert "connection to ts.example.test:443 failed" in str(info.value)
    assert "not retried" in str(info.value)
    with pytest.raises(AuthError):
        client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, LOGIN_PATH)) == 2


@pytest.mark.parametrize("status", [404, 409, 422, 423, 501])
def test_any_final_login_failure_is_remembered(api: rm.Mocker, status: int) -> None:
    api.post(BASE + LOGIN_PATH, status_code=status, json={"errorCode": "X"})
    client = make_client()
    for _ in range(3):
        with pytest.raises(AuthError):
            client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, LOGIN_PATH)) == 1


def test_login_without_session_token_is_remembered(api: rm.Mocker) -> None:
    api.post(BASE + LOGIN_PATH, json={"unexpected": True})
    client = make_client()
    with pytest.raises(AuthError) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert "unexpected response" in str(info.value)
    with pytest.raises(AuthError):
        client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, LOGIN_PATH)) == 1


def test_close_logs_out_with_both_headers(api: rm.Mocker) -> None:
    with make_client() as client:
        client.list_callbacks(ACCOUNT, M2M)
    logout = last(api)
    assert (logout.method, logout.path) == ("POST", LOGOUT_PATH)
    assert logout.headers["Authorization"] == "Bearer bearer-1"
    assert logout.headers["VZ-M2M-Token"] == "session-1"
    assert client.stats().count("POST", "auth") == 3


def test_close_without_session_sends_nothing(api: rm.Mocker) -> None:
    make_client().close()
    assert api.request_history == []


def test_close_never_raises(api: rm.Mocker) -> None:
    api.post(BASE + LOGOUT_PATH, exc=requests.exceptions.ConnectionError)
    sleeps: list[float] = []
    client = make_client(sleeps=sleeps)
    client.list_callbacks(ACCOUNT, M2M)
    client.close()
    assert len(calls(api, LOGOUT_PATH)) == 1  # a single attempt, no backoff
    assert sleeps == []


def test_secrets_lists_credentials_and_tokens(api: rm.Mocker) -> None:
    client = make_client()
    client.list_callbacks(ACCOUNT, M2M)
    secrets = client.secrets()
    for value in ("client-secret-XYZ", "user-password-PQR", "bearer-1", "session-1"):
        assert value in secrets
    assert "client-secret-XYZ" not in repr(client)
    assert "bearer-1" not in repr(client._auth.current())
    assert "session-1" not in repr(client._auth.current())


def test_login_error_echoing_password_is_scrubbed(api: rm.Mocker) -> None:
    api.post(
        BASE + LOGIN_PATH,
        status_code=401,
        json={
            "errorCode": "INVALID_ACCESS",
            "errorMessage": "user api-user password user-password-PQR with bearer-1 refused",
        },
    )
    client = make_client()
    with pytest.raises(AuthError) as info:
        client.list_callbacks(ACCOUNT, M2M)
    for text in (str(info.value), repr(info.value), json.dumps(vars(info.value), default=str)):
        assert "user-password-PQR" not in text
        assert "bearer-1" not in text
    assert "(sensitive)" in str(info.value)


def _fota() -> Any:
    from reconciler.core.model import Registration

    return Registration(url="https://hooks.example.com/fota")


def _no_refusal(why: str) -> ApiError:
    raise AssertionError(f"unexpected refusal: {why}")


def _capture(sink: list[BaseException], fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except BaseException as exc:
        sink.append(exc)


def test_login_is_retried_at_most_three_times(api: rm.Mocker) -> None:
    # A timed-out login may still count as a failure at Verizon; five lock the user.
    api.post(BASE + LOGIN_PATH, status_code=503, json={"errorCode": "UNAVAILABLE"})
    client = make_client(max_attempts=5, breaker_threshold=10)
    with pytest.raises(AuthError, match="gave up after 3 attempts"):
        client.list_callbacks(ACCOUNT, M2M)
    logins = [r for r in api.request_history if r.path == LOGIN_PATH]
    assert len(logins) == 3


def test_a_bearer_that_expired_during_a_retry_is_renewed_alone() -> None:
    """A 429's Retry-After sleeps past the bearer's renewal: the retry's 401 costs a new
    bearer, not a new M2M session (logins are what lock users out)."""
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    with rm.Mocker() as m:
        m.post(BASE + TOKEN_PATH, token_responses(expires_in=100))
        m.post(BASE + LOGIN_PATH, login_responses())

        def listing(request: Any, context: Any) -> Any:
            if request.headers["Authorization"] == "Bearer bearer-1" and clock.now > 1050:
                context.status_code = 401
                return {"errorCode": "INVALID_ACCESS"}
            return []

        m.get(
            LIST_URL,
            [{"status_code": 429, "headers": {"Retry-After": "95"}}, {"json": listing}],
        )
        client = ThingSpaceClient(BASE, CREDS, sleep=sleep, clock=clock)
        assert client.list_callbacks(ACCOUNT, M2M) == []
        stats = client.stats()
        assert (stats.token_grants, stats.logins, stats.relogins) == (2, 1, 0)
        last_list = [r for r in m.request_history if r.path == LIST_URL.removeprefix(BASE)][-1]
        assert last_list.headers["Authorization"] == "Bearer bearer-2"
        assert last_list.headers["VZ-M2M-Token"] == "session-1"


def test_an_expired_session_behind_a_due_bearer_still_recovers(api: rm.Mocker) -> None:
    """Bearer renewed first; when the 401 was the session's, the next renewal logs in."""
    clock = FakeClock()

    def slow_401(request: Any, context: Any) -> Any:
        clock.now += 3590  # a long call: the bearer became due while it was out
        context.status_code = 401
        return {}

    api.get(LIST_URL, [{"json": slow_401}, {"status_code": 401}, {"json": []}])
    client = make_client(clock=clock, deadline=None)
    assert client.list_callbacks(ACCOUNT, M2M) == []
    assert len(calls(api, TOKEN_PATH)) == 3  # first, bearer-only renewal, re-login
    assert len(calls(api, LOGIN_PATH)) == 2


# -- single flight, the login budget and session renewals --------------------------------


@pytest.mark.parametrize("threads", [1, 4, 16])
def test_a_failed_token_request_is_shared_by_every_thread(
    requests_mock: rm.Mocker, threads: int
) -> None:
    """One failed attempt sequence for the whole run, whatever the parallelism: the
    threads that waited get the same error without sending anything."""
    requests_mock.post(BASE + TOKEN_PATH, status_code=503, json={"errorCode": "UNAVAILABLE"})
    requests_mock.get(LIST_URL, json=[])
    client = make_client(parallelism=threads, max_attempts=5, breaker_threshold=100)
    errors: list[BaseException] = []
    workers = [
        threading.Thread(target=_capture, args=(errors, client.list_callbacks, ACCOUNT, M2M))
        for _ in range(threads)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert len(calls(requests_mock, TOKEN_PATH)) == 5  # one sequence of five attempts
    assert len(errors) == threads
    assert all(isinstance(e, AuthError) for e in errors)
    assert len({str(e) for e in errors}) == 1
    assert "gave up after 5 attempts" in str(errors[0])


def test_logins_have_one_budget_of_three_per_run(api: rm.Mocker) -> None:
    """Every POST to the login path counts, across renewals: a renewal after a login that
    needed two attempts has one attempt left, not three."""
    api.post(
        BASE + LOGIN_PATH,
        [
            {"status_code": 503},
            {"json": {"sessionToken": "session-1"}},
            {"status_code": 503},
            {"status_code": 503},
            {"json": {"sessionToken": "session-2"}},
        ],
    )
    api.get(LIST_URL, [{"json": []}, {"status_code": 401}, {"json": []}])
    client = make_client()
    assert client.list_callbacks(ACCOUNT, M2M) == []  # logged in at the second attempt
    with pytest.raises(AuthError) as info:  # the session expired; one login attempt left
        client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, LOGIN_PATH)) == 3
    assert "gave up after 1 attempt" in str(info.value)
    with pytest.raises(AuthError):
        client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, LOGIN_PATH)) == 3


def test_no_login_is_sent_once_the_budget_is_used(api: rm.Mocker) -> None:
    api.post(
        BASE + LOGIN_PATH,
        [{"status_code": 503}, {"status_code": 503}, {"json": {"sessionToken": "session-1"}}],
    )
    api.get(LIST_URL, [{"json": []}, {"status_code": 401}])
    client = make_client()
    client.list_callbacks(ACCOUNT, M2M)
    with pytest.raises(AuthError) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert len(calls(api, LOGIN_PATH)) == 3
    assert "POST /api/m2m/v1/session/login" in str(info.value)
    assert "used its 3 login attempts" in str(info.value)


def test_the_session_is_renewed_each_time_it_expires_up_to_the_cap(api: rm.Mocker) -> None:
    """Expiries moments apart are renewed, each time the renewed session has worked; the
    third expiry in a run stops it (MAX_SESSION_RENEWALS), without further requests."""
    api.get(
        LIST_URL,
        [
            {"json": []},
            {"status_code": 401},  # expired: renewal 1
            {"json": []},
            {"status_code": 401},  # expired again, a moment later: renewal 2
            {"json": []},
            {"status_code": 401},  # and again: over the cap
            {"json": []},
        ],
    )
    client = make_client()  # the clock never moves: all within a second
    for _ in range(3):
        assert client.list_callbacks(ACCOUNT, M2M) == []
    assert client.stats().relogins == 2
    with pytest.raises(AuthError) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert "renewed at most 2 times per run" in str(info.value)
    seen = len(api.request_history)
    with pytest.raises(AuthError):
        client.list_callbacks(ACCOUNT, M2M)
    assert len(api.request_history) == seen
    assert len(calls(api, LOGIN_PATH)) == 3


def test_threads_holding_an_expired_session_share_one_renewal() -> None:
    with rm.Mocker() as m:
        m.post(BASE + TOKEN_PATH, token_responses())
        m.post(BASE + LOGIN_PATH, login_responses())
        client = make_client()
        auth = client._auth
        stale = auth.current()
        auth.confirm(stale)  # it worked, then expired
        fresh = auth.renew(stale, _no_refusal)
        auth.confirm(fresh)
        again = auth.renew(fresh, _no_refusal)  # a later expiry of the renewed session
        assert again.session == "session-3"
        assert auth.renew(fresh, _no_refusal).session == "session-3"  # another thread
        assert len(calls(m, LOGIN_PATH)) == 3
