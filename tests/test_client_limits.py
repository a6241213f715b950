"""The run's limits in the client: timeouts, the circuit breaker, the deadline, and
connection errors that name the host and the cause."""

from __future__ import annotations

import random
import socket
import threading
from typing import Any

import pytest
import requests
import requests_mock as rm

from reconciler.core.errors import ApiError
from reconciler.core.families import M2M
from reconciler.engine.observe import read_current
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.guard import RunStopped
from reconciler.thingspace.options import ClientOptions
from tests.helpers import BlackHole

BASE = "https://ts.example.test"
ACCOUNT = "0252012345-00001"
LIST = f"{BASE}/api/m2m/v1/callbacks/{ACCOUNT}"
CREDS = Credentials(
    client_id="client-id-1",
    client_secret="client-secret-XYZ",
    username="api-user",
    password="user-password-PQR",
)


class Clock:
    """A clock that moves only when told (sleeps and simulated waits move it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Longest(random.Random):
    """Every jittered backoff takes its longest possible value."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def api(requests_mock: rm.Mocker) -> rm.Mocker:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "bearer-1", "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "session-1"})
    return requests_mock


def client_for(clock: Clock | None = None, **options: Any) -> ThingSpaceClient:
    clock = clock or Clock()
    return ThingSpaceClient(
        BASE, CREDS, options=ClientOptions(**options), sleep=clock.advance, clock=clock
    )


def sent(m: rm.Mocker, method: str = "GET") -> int:
    return sum(1 for r in m.request_history if r.method == method)


# -- timeouts -----------------------------------------------------------------------------


def test_default_timeouts_are_short(api: rm.Mocker) -> None:
    api.get(LIST, json=[])
    client_for().list_callbacks(ACCOUNT, M2M)
    assert {r.timeout for r in api.request_history} == {(5.0, 8.0)}


def test_read_timeout_is_configurable_and_bounds_the_connect_timeout(api: rm.Mocker) -> None:
    api.get(LIST, json=[])
    client_for(read_timeout=30.0).list_callbacks(ACCOUNT, M2M)
    client_for(read_timeout=0.5).list_callbacks(ACCOUNT, M2M)
    assert [r.timeout for r in api.request_history if r.method == "GET"] == [
        (5.0, 30.0),
        (0.5, 0.5),
    ]


class SimulatedBlackHole(requests.Session):
    """Every request waits its whole timeout (on the simulated clock) and gets no answer:
    the connection is accepted, the answer never comes."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.sent = 0
        self._lock = threading.Lock()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        connect, read = kwargs["timeout"]
        with self._lock:
            self.sent += 1
        self.clock.advance(max(connect, read))
        raise requests.exceptions.ReadTimeout("no answer")


@pytest.mark.parametrize("parallelism", [1, 4, 16])
def test_worst_case_with_the_default_settings_is_under_30_seconds(parallelism: int) -> None:
    """A black hole with every timeout and backoff at its longest, through the real code
    with the default options: the run stops after the same few requests, whatever the
    parallelism, within 30 s."""
    clock = Clock()
    start = clock.now
    hole = SimulatedBlackHole(clock)
    client = ThingSpaceClient(
        BASE,
        CREDS,
        options=ClientOptions(parallelism=parallelism),
        session=hole,
        sleep=clock.advance,
        clock=clock,
        rng=Longest(),
    )
    wanted = {f"acct-{i}": frozenset({M2M}) for i in range(10)}
    with pytest.raises(RunStopped) as info:
        read_current(client, wanted, parallelism=parallelism)
    assert hole.sent == 3
    assert clock.now - start <= 30.0
    assert "3 requests in a row failed" in str(info.value)
    assert "no answer from ts.example.test:443 within 8 s" in str(info.value)


# -- the circuit breaker --------------------------------------------------------------------


def test_breaker_stops_the_run_after_failures_in_a_row(api: rm.Mocker) -> None:
    api.get(LIST, status_code=503, json={"errorCode": "SERVICE_UNAVAILABLE"})
    client = client_for()
    with pytest.raises(RunStopped) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert sent(api) == 3  # not the five attempts a single call may make
    text = str(info.value)
    assert text.startswith("stopped: 3 requests in a row failed")
    assert "GET /api/m2m/v1/callbacks/0252012345-00001: HTTP 503 SERVICE_UNAVAILABLE" in text
    assert text.endswith("5 requests sent in this run")  # token, login and three GETs
    assert "\n" not in text
    # Nothing new is sent after it, from any thread.
    seen = len(api.request_history)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.list_callbacks(ACCOUNT, M2M)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 and all(isinstance(e, RunStopped) for e in errors)
    assert len(api.request_history) == seen


def test_breaker_counts_across_calls_and_an_answer_resets_it(api: rm.Mocker) -> None:
    api.get(
        LIST,
        [
            {"status_code": 503},
            {"status_code": 502},
            {"json": []},  # an answer: the count starts again
            {"status_code": 429, "headers": {"Retry-After": "0"}},  # a rate limit is neutral
            {"status_code": 500},
            {"json": []},
            {"exc": requests.exceptions.ConnectionError},
            {"status_code": 504},
            {"status_code": 503},  # the third in a row, across two calls
            {"json": []},
        ],
    )
    client = client_for(breaker_threshold=3)
    assert client.list_callbacks(ACCOUNT, M2M) == []
    assert client.list_callbacks(ACCOUNT, M2M) == []
    with pytest.raises(RunStopped, match="3 requests in a row failed"):
        client.list_callbacks(ACCOUNT, M2M)
    assert sent(api) == 9


# -- the deadline ---------------------------------------------------------------------------


def test_deadline_refuses_new_requests_once_passed(api: rm.Mocker) -> None:
    api.get(LIST, json=[])
    clock = Clock()
    client = client_for(clock, deadline=60.0)
    client.list_callbacks(ACCOUNT, M2M)
    clock.advance(61.0)
    seen = len(api.request_history)
    with pytest.raises(RunStopped) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert len(api.request_history) == seen
    assert str(info.value) == (
        "stopped: the run's deadline of 60 s passed; 3 requests sent in this run"
    )


def test_deadline_bounds_each_timeout_and_stops_instead_of_a_useless_wait(
    api: rm.Mocker,
) -> None:
    api.get(LIST, status_code=429, headers={"Retry-After": "30"})
    clock = Clock()
    client = client_for(clock, deadline=20.0)
    clock.advance(17.0)
    with pytest.raises(RunStopped) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert sent(api) == 1
    assert [r.timeout for r in api.request_history][-1] == (3.0, 3.0)  # 3 s were left
    assert clock.now == 1017.0  # it did not sleep 30 s for nothing
    assert "waiting 30 s to retry would pass the run's deadline of 20 s" in str(info.value)


def test_time_at_a_prompt_does_not_count(api: rm.Mocker) -> None:
    api.get(LIST, json=[])
    clock = Clock()
    client = client_for(clock, deadline=60.0)
    with client.deadline_paused():
        clock.advance(3600.0)  # someone reads the plan for an hour
    clock.advance(59.0)
    assert client.list_callbacks(ACCOUNT, M2M) == []


def test_a_set_stop_event_sends_nothing_and_cuts_waits_short(api: rm.Mocker) -> None:
    api.get(LIST, status_code=503)
    stop = threading.Event()

    class LongestWait(random.Random):
        """Backoff at its ceiling (0.5 s first): the stop always lands inside a wait,
        never after enough quick retries to trip the circuit breaker first."""

        def uniform(self, a: float, b: float) -> float:
            return b

    # the default, interruptible sleep
    client = ThingSpaceClient(BASE, CREDS, stop=stop, rng=LongestWait())
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    with pytest.raises(RunStopped, match="interrupted; no new request was sent"):
        client.list_callbacks(ACCOUNT, M2M)
    timer.join()
    assert sent(api) <= 2  # one before the backoff wait; the wait ended with the event


# -- connection errors name the host and the cause ------------------------------------------


def _one_attempt(base: str, **options: Any) -> str:
    client = ThingSpaceClient(
        base, CREDS, options=ClientOptions(max_attempts=1, **options), sleep=lambda s: None
    )
    with pytest.raises(ApiError) as info:  # getting a bearer failed: an AuthError
        client.list_callbacks(ACCOUNT, M2M)
    assert info.value.status is None  # no HTTP answer
    return str(info.value)


def test_connection_refused_names_host_and_port() -> None:
    text = _one_attempt("http://127.0.0.1:1")
    assert "connection refused by 127.0.0.1:1" in text
    assert text.startswith("POST /api/ts/v1/oauth2/token: ")


def test_no_answer_names_host_port_and_timeout() -> None:
    with BlackHole() as hole:
        text = _one_attempt(hole.base, read_timeout=0.2)
    assert f"no answer from 127.0.0.1:{hole.port} within 0.2 s" in text


def test_unresolvable_host_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)  # nothing leaves this machine
    text = _one_attempt("https://thingspace.verizon.co")
    assert "could not resolve thingspace.verizon.co" in text


def test_connect_timeout_is_named(api: rm.Mocker) -> None:
    api.post(BASE + TOKEN_PATH, exc=requests.exceptions.ConnectTimeout("10.0.0.1 secret-ish"))
    text = _one_attempt(BASE)
    assert "timed out connecting to ts.example.test:443 (after 5 s)" in text
    assert "secret-ish" not in text  # never the exception's own text


def test_closed_without_an_answer_is_named() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def close_each() -> None:
        for _ in range(1):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.close()

    closer = threading.Thread(target=close_each, daemon=True)
    closer.start()
    try:
        text = _one_attempt(f"http://127.0.0.1:{port}")
    finally:
        closer.join(timeout=5)
        listener.close()
    assert (
        f"127.0.0.1:{port} closed the connection without an answer" in text
        or f"connection reset by 127.0.0.1:{port}" in text
    )
