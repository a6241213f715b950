"""The client reads the environment's proxy and CA settings once per run, as requests
would per request: HTTPS_PROXY/ALL_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import requests_mock as rm

from reconciler.core.errors import UsageError
from reconciler.core.families import M2M
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.transport import environment_settings, request_settings

BASE = "https://ts.example.test"
ACCOUNT = "0252012345-00001"
CREDS = Credentials(client_id="id", client_secret="secret", username="user", password="pw")
PROXY = "http://proxy.example.test:3128"
ENV = (
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
    "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def sent(requests_mock: rm.Mocker) -> Any:
    """List one account through a client that owns its session; the request it sent."""
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "b", "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "s"})
    requests_mock.get(f"{BASE}/api/m2m/v1/callbacks/{ACCOUNT}", json=[])
    with ThingSpaceClient(BASE, CREDS) as client:
        client.listing(ACCOUNT, M2M)
    listing = [r for r in requests_mock.request_history if r.method == "GET"]
    assert len(listing) == 1
    return listing[0]


def test_no_proxy_and_the_default_ca_bundle_without_settings(requests_mock: rm.Mocker) -> None:
    request = sent(requests_mock)
    assert not request.proxies.get("https") and request.verify is True


def test_https_proxy_is_used(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    assert sent(requests_mock).proxies["https"] == PROXY


def test_all_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", PROXY)
    assert environment_settings(BASE)[0]["all"] == PROXY


@pytest.mark.parametrize(
    "no_proxy", ["ts.example.test", ".example.test", "*", "other,ts.example.test"]
)
def test_no_proxy_covering_the_endpoint_bypasses_the_proxy(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker, no_proxy: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert "https" not in sent(requests_mock).proxies


def test_no_proxy_for_another_host_keeps_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", PROXY)
    monkeypatch.setenv("no_proxy", "elsewhere.example.test")
    assert environment_settings(BASE)[0]["https"] == PROXY


def test_requests_ca_bundle_is_used(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker, tmp_path: Path
) -> None:
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/curl/ca.pem")
    assert sent(requests_mock).verify == str(bundle)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_that_does_not_exist_is_one_line_before_any_request(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker, variable: str
) -> None:
    monkeypatch.setenv(variable, "/etc/corp/missing\nca.pem")
    with pytest.raises(UsageError) as raised:
        ThingSpaceClient(BASE, CREDS)
    assert str(raised.value).startswith("cannot use the CA bundle /etc/corp/missing")
    assert "there is no such file or directory; check REQUESTS_CA_BUNDLE" in str(raised.value)
    assert requests_mock.request_history == []


def test_a_ca_bundle_is_not_looked_at_for_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp/missing.pem")
    ThingSpaceClient("http://127.0.0.1:9", CREDS).close()


def test_curl_ca_bundle_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/curl/ca.pem")
    assert environment_settings(BASE)[1] == "/etc/curl/ca.pem"


def test_the_environment_is_read_once_per_client(
    monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker
) -> None:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "b", "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "s"})
    requests_mock.get(f"{BASE}/api/m2m/v1/callbacks/{ACCOUNT}", json=[])
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    with ThingSpaceClient(BASE, CREDS) as client:
        monkeypatch.setenv("HTTPS_PROXY", "http://later.example.test:1")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/later.pem")
        client.listing(ACCOUNT, M2M)
    request = requests_mock.request_history[-1]
    assert request.proxies["https"] == PROXY and request.verify is True


def test_a_given_session_keeps_its_own_settings_over_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/corp/ca.pem")
    session = requests.Session()
    session.verify = "/own/ca.pem"
    session.cert = "/own/client.pem"
    proxies, verify, cert = request_settings(session, BASE)
    assert (proxies["https"], verify, cert) == (PROXY, "/own/ca.pem", "/own/client.pem")
    session.trust_env = False  # a session that ignores the environment
    session.verify = True
    proxies, verify, _ = request_settings(session, BASE)
    assert "https" not in proxies and verify is True
