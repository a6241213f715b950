"""The transport's observer hook: every attempt and every wait before a retry, heard as it
happens, with nothing secret in it; a failing observer never breaks a request."""

from __future__ import annotations

import random

import pytest
import requests
import requests_mock as rm

from reconciler.core import families
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.events import Attempted, Cause, Waiting, WireEvent
from reconciler.thingspace.options import ClientOptions
from tests.test_client import ACCOUNT, BASE, BEARER, CREDS, M2M, SESSION

LIST_PATH = f"/api/m2m/v1/callbacks/{ACCOUNT}"


@pytest.fixture
def api(requests_mock: rm.Mocker) -> rm.Mocker:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": BEARER, "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": SESSION})
    return requests_mock


def watched(events: list[WireEvent], **options: float) -> ThingSpaceClient:
    ticks = iter(range(0, 10_000))  # each clock reading is one second later
    return ThingSpaceClient(
        BASE,
        CREDS,
        options=ClientOptions(**options),  # type: ignore[arg-type]
        sleep=lambda seconds: None,
        clock=lambda: float(next(ticks)),
        rng=random.Random(7),
        observer=events.append,
    )


def test_every_attempt_is_heard_with_status_and_time(api: rm.Mocker) -> None:
    api.get(M2M, json=[])
    events: list[WireEvent] = []
    watched(events).list_callbacks(ACCOUNT, families.M2M)
    assert [(e.method, e.path, e.kind, e.status) for e in events if isinstance(e, Attempted)] == [
        ("POST", TOKEN_PATH, "auth", 200),
        ("POST", LOGIN_PATH, "auth", 200),
        ("GET", LIST_PATH, "api", 200),
    ]
    assert all(isinstance(e, Attempted) and e.seconds == 1.0 and e.attempt == 1 for e in events)


def test_a_rate_limit_is_heard_as_a_wait_of_its_retry_after(api: rm.Mocker) -> None:
    api.get(M2M, [{"status_code": 429, "headers": {"Retry-After": "30"}}, {"json": []}])
    events: list[WireEvent] = []
    watched(events).list_callbacks(ACCOUNT, families.M2M)
    waits = [e for e in events if isinstance(e, Waiting)]
    assert waits == [Waiting("GET", LIST_PATH, "api", 1, 5, 30.0, Cause.RATE_LIMITED, 429, None)]
    assert waits[0].reason() == "rate limited by ThingSpace"
    listed = [e for e in events if isinstance(e, Attempted) and e.path == LIST_PATH]
    assert [(e.attempt, e.status) for e in listed] == [(1, 429), (2, 200)]
    # The wait is heard before the retry is sent.
    assert events.index(waits[0]) == events.index(listed[1]) - 1


def test_server_errors_and_dropped_connections_say_why(api: rm.Mocker) -> None:
    api.get(
        M2M,
        [
            {"status_code": 503},
            {"exc": requests.ConnectionError("reset with token=abc")},
            {"json": []},
        ],
    )
    events: list[WireEvent] = []
    watched(events, breaker_threshold=5).list_callbacks(ACCOUNT, families.M2M)
    waits = [e for e in events if isinstance(e, Waiting)]
    assert [(w.cause, w.status) for w in waits] == [
        (Cause.SERVER_ERROR, 503),
        (Cause.NO_ANSWER, None),
    ]
    assert waits[0].reason() == "ThingSpace answered HTTP 503"
    # Our own words, naming the host: never the exception's text (which may hold anything).
    assert waits[1].reason() == "connection to ts.example.test:443 failed"
    failed = [e for e in events if isinstance(e, Attempted) and e.status is None]
    assert [e.failure for e in failed] == ["connection to ts.example.test:443 failed"]


def test_events_carry_no_secret(api: rm.Mocker) -> None:
    api.get(M2M, [{"status_code": 429, "json": {"errorMessage": CREDS.password}}, {"json": []}])
    events: list[WireEvent] = []
    watched(events).list_callbacks(ACCOUNT, families.M2M)
    shown = repr(events)
    for secret in (CREDS.password, CREDS.client_secret, BEARER, SESSION):
        assert secret not in shown


def test_an_observer_that_fails_never_breaks_a_request(api: rm.Mocker) -> None:
    api.get(M2M, [{"status_code": 429, "headers": {"Retry-After": "1"}}, {"json": []}])
    heard: list[WireEvent] = []

    def broken(event: WireEvent) -> None:
        heard.append(event)
        raise BrokenPipeError("stderr went away")

    client = ThingSpaceClient(
        BASE, CREDS, sleep=lambda s: None, rng=random.Random(7), observer=broken
    )
    assert client.list_callbacks(ACCOUNT, families.M2M) == []
    assert any(isinstance(e, Waiting) for e in heard)
