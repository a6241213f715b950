"""Reading current state: which calls are made, and normalization into Registration values."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests_mock as rm

from reconciler.core.errors import ApiError
from reconciler.core.families import FOTA, M2M
from reconciler.core.model import CurrentState, Key, Registration
from reconciler.core.secrets import Secret
from reconciler.engine.observe import read_current
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.options import ClientOptions
from reconciler.thingspace.wireformat import normalize
from tests.helpers import InFlightProbe, bare_adapter_session

BASE = "https://ts.example.test"
A = "0252012345-00001"
B = "0252012345-00002"
CREDS = Credentials(client_id="id", client_secret="cs", username="u", password="pw")


def m2m_url(account: str) -> str:
    return f"{BASE}/api/m2m/v1/callbacks/{account}"


def fota_url(account: str) -> str:
    return f"{BASE}/api/fota/v1/callbacks/{account}"


@pytest.fixture
def api(requests_mock: rm.Mocker) -> rm.Mocker:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "t", "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "s"})
    return requests_mock


def make_client(**options: Any) -> ThingSpaceClient:
    return ThingSpaceClient(BASE, CREDS, options=ClientOptions(**options), sleep=lambda _: None)


def get_paths(m: rm.Mocker) -> set[str]:
    return {urlsplit(r.url).path for r in m.request_history if r.method == "GET"}


# -- normalize_m2m ----------------------------------------------------------------------


def test_m2m_password_states() -> None:
    items: list[dict[str, Any]] = [
        {"accountName": A, "serviceName": "S1", "url": "https://h/1", "password": "pw1"},
        {"accountName": A, "serviceName": "S2", "url": "https://h/2"},
        {"accountName": A, "serviceName": "S3", "url": "https://h/3", "password": ""},
        {"accountName": A, "serviceName": "S4", "url": "https://h/4", "password": None},
    ]
    got = normalize(M2M, A, items)
    assert got["S1"] == Registration(url="https://h/1", password=Secret("pw1"), family=M2M)
    assert got["S1"].password_known is True
    assert got["S2"] == Registration(
        url="https://h/2", password=None, password_known=False, family=M2M
    )
    assert got["S3"] == Registration(
        url="https://h/3", password=None, password_known=True, family=M2M
    )
    assert got["S4"] == Registration(
        url="https://h/4", password=None, password_known=True, family=M2M
    )
    assert "pw1" not in repr(got)


@pytest.mark.parametrize("username", ["", None])
def test_m2m_empty_username_is_none(username: str | None) -> None:
    items = [{"serviceName": "S", "url": "u", "username": username, "password": "p"}]
    assert normalize(M2M, A, items)["S"].username is None


def test_m2m_keeps_username_and_ignores_other_accounts() -> None:
    items = [
        {"accountName": A, "serviceName": "DeviceUsage", "url": "u1", "username": "hook"},
        {"accountName": B, "serviceName": "AlertService", "url": "u2"},
    ]
    got = normalize(M2M, A, items)
    assert list(got) == ["DeviceUsage"]
    assert got["DeviceUsage"].username == "hook"


def test_m2m_duplicate_service_keeps_last() -> None:
    items = [
        {"accountName": A, "serviceName": "DeviceUsage", "url": "first"},
        {"accountName": A, "serviceName": "DeviceUsage", "url": "last"},
    ]
    assert normalize(M2M, A, items) == {
        "DeviceUsage": Registration("last", password_known=False, family=M2M)
    }


@pytest.mark.parametrize(
    "item",
    [
        {"accountName": A, "url": "u", "password": "leaky-pw"},
        {"accountName": A, "serviceName": "S", "password": "leaky-pw"},
        {"accountName": A, "serviceName": "", "url": "u", "password": "leaky-pw"},
        {"accountName": A, "serviceName": "S", "url": 5, "password": "leaky-pw"},
        {"accountName": A, "serviceName": "S", "url": "u", "password": 987654321},
    ],
)
def test_m2m_malformed_item_is_unexpected_response(item: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as info:
        normalize(M2M, A, [item])
    assert "unexpected response" in str(info.value)
    assert str(info.value).startswith(f"GET /api/m2m/v1/callbacks/{A}")
    assert "leaky-pw" not in str(info.value) and "987654321" not in str(info.value)


# -- normalize_fota ---------------------------------------------------------------------


def test_fota_items() -> None:
    items = [
        {"aname": A, "name": "Fota", "url": "https://h/f"},
        {"aname": B, "name": "Fota", "url": "https://h/other"},
    ]
    got = normalize(FOTA, A, items)
    assert got == {"Fota": Registration(url="https://h/f", family=FOTA)}
    assert got["Fota"].password_known is True
    assert got["Fota"].username is None and got["Fota"].password is None


@pytest.mark.parametrize("item", [{"aname": A, "url": "u"}, {"aname": A, "name": "Fota"}])
def test_fota_malformed_item(item: dict[str, Any]) -> None:
    with pytest.raises(ApiError, match="unexpected response"):
        normalize(FOTA, A, [item])


def test_fota_empty() -> None:
    assert normalize(FOTA, A, []) == {}


# -- read_current -----------------------------------------------------------------------


def test_read_current_only_reads_what_was_asked(api: rm.Mocker) -> None:
    for account in (A, B, "C"):
        api.get(m2m_url(account), json=[])
        api.get(fota_url(account), text="")
    api.get(
        m2m_url(A),
        json=[{"accountName": A, "serviceName": "DeviceUsage", "url": "https://h/u"}],
    )
    api.get(fota_url(B), json=[{"aname": B, "name": "Fota", "url": "https://h/f"}])
    wanted = {A: frozenset({M2M}), B: frozenset({FOTA}), "C": frozenset()}
    state = read_current(make_client(), wanted, parallelism=4)
    assert get_paths(api) == {
        urlsplit(m2m_url(A)).path,
        urlsplit(fota_url(B)).path,
    }
    assert isinstance(state, CurrentState)
    assert set(state.accounts) == {A, B, "C"}
    assert state.get(Key(A, "DeviceUsage")) == Registration(
        url="https://h/u", password_known=False, family=M2M
    )
    assert state.get(Key(B, "Fota")) == Registration(url="https://h/f", family=FOTA)
    assert dict(state.accounts["C"]) == {}


def test_read_current_merges_both_families(api: rm.Mocker) -> None:
    api.get(m2m_url(A), json=[{"accountName": A, "serviceName": "QoS", "url": "https://h/q"}])
    api.get(fota_url(A), json=[{"aname": A, "name": "Fota", "url": "https://h/f"}])
    state = read_current(make_client(), {A: frozenset({M2M, FOTA})}, parallelism=2)
    assert set(state.accounts[A]) == {"QoS", "Fota"}


def test_read_current_nothing_wanted_makes_no_request(api: rm.Mocker) -> None:
    state = read_current(make_client(), {}, parallelism=4)
    assert dict(state.accounts) == {}
    assert api.request_history == []


def test_read_current_raises_first_failure(api: rm.Mocker) -> None:
    api.get(m2m_url(A), json=[])
    api.get(
        m2m_url(B), status_code=400, json={"errorCode": "INVALID_PARAMETER", "errorMessage": "x"}
    )
    with pytest.raises(ApiError) as info:
        read_current(make_client(), {A: frozenset({M2M}), B: frozenset({M2M})}, parallelism=2)
    assert info.value.error_code == "INVALID_PARAMETER"
    assert B in info.value.path


def test_read_current_normalization_failure_is_api_error(api: rm.Mocker) -> None:
    api.get(fota_url(A), json=[{"aname": A, "url": "https://h/f"}])
    with pytest.raises(ApiError, match="unexpected response"):
        read_current(make_client(), {A: frozenset({FOTA})}, parallelism=1)


def test_read_current_bounds_workers() -> None:
    adapter, session = bare_adapter_session(BASE, bearer="t", session_token="s")
    slow = InFlightProbe()
    accounts = [f"acct-{i}" for i in range(10)]
    for account in accounts:
        adapter.register_uri("GET", m2m_url(account), json=slow)
    client = ThingSpaceClient(BASE, CREDS, options=ClientOptions(parallelism=8), session=session)
    wanted = {account: frozenset({M2M}) for account in accounts}
    state = read_current(client, wanted, parallelism=2)
    assert set(state.accounts) == set(accounts)
    assert slow.peak == 2


class _Interrupted(Exception):
    """What this test's SIGINT handler raises (as Python's raises KeyboardInterrupt)."""


class _StuckClient:
    """A client whose listings wait (for an answer that comes only after the test)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def listing(self, account: str, family: Any) -> dict[str, Registration]:
        self.calls += 1
        self.started.set()
        self.release.wait(10)
        return {}


def test_read_current_returns_at_once_when_interrupted() -> None:
    """Ctrl-C while listings wait for their answers: reading changes nothing, so it does
    not wait for them, and it starts no further listing."""
    stuck = _StuckClient()

    def interrupt(signum: int, frame: object) -> None:
        raise _Interrupted

    def send_sigint() -> None:
        stuck.started.wait(5)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, interrupt)
    sender = threading.Thread(target=send_sigint)
    try:
        sender.start()
        started = time.monotonic()
        with pytest.raises(_Interrupted):
            read_current(
                stuck,  # type: ignore[arg-type]
                {f"acct-{i}": frozenset({M2M}) for i in range(8)},
                parallelism=2,
            )
        elapsed = time.monotonic() - started
    finally:
        sender.join()
        signal.signal(signal.SIGINT, previous)
        stuck.release.set()
    assert elapsed < 1.5  # the listings would have waited 10 s
    time.sleep(0.1)  # the two workers finish their listing, and take no new one
    assert stuck.calls == 2
