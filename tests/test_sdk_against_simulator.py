"""Verizon's own Python SDK (``sdksio-verizon-apis-sdk``, unchanged) against the simulator.

The simulator is an oracle only if a client that is not ours agrees with it. Every
server of the SDK's production environment is pointed at a simulator on 127.0.0.1 over
real HTTP, keeping its path (``https://thingspace.verizon.com/api/loc/v1`` becomes
``http://127.0.0.1:PORT/api/loc/v1``); the SDK fetches its own OAuth token and logs in
with its own session controller. Then, for each of the seven callback families: list
(empty), register, list, update (where the family has one), deregister, list (empty),
each answer read through the SDK's models. Each test runs twice: against ``tscallbacks
simulator serve`` in its own process (as issue 10 asks), and against the in-process server.
"""

from __future__ import annotations

import importlib
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from reconciler.simulator import Simulator, SimulatorConfig, SimulatorCredentials
from reconciler.simulator.families import SHARED_SECRET_HEADER
from tests.e2e_support import COMMAND, base_env
from tests.test_journal_e2e import LISTENING

try:
    sdk: Any = importlib.import_module("verizon.verizon_client")
    configuration: Any = importlib.import_module("verizon.configuration")
    oauth: Any = importlib.import_module("verizon.http.auth.thingspace_oauth")
    m2m_token: Any = importlib.import_module("verizon.http.auth.vz_m2m_token")
except ImportError as exc:  # CI installs .[test], which has it
    pytest.skip(
        f"Verizon's SDK (sdksio-verizon-apis-sdk) cannot be imported: {exc}",
        allow_module_level=True,
    )

CREDS = SimulatorCredentials("sdk-client", client_secret="sdk-secret", username="u", password="p")
ACCOUNT = "0252012345-00001"


@contextmanager
def _served() -> Iterator[str]:
    """``tscallbacks simulator serve`` in its own process, taking the SDK's credentials."""
    env = base_env(
        THINGSPACE_CLIENT_ID=CREDS.client_id,
        THINGSPACE_CLIENT_SECRET=CREDS.client_secret,
        THINGSPACE_USERNAME=CREDS.username,
        THINGSPACE_PASSWORD=CREDS.password,
    )
    proc = subprocess.Popen(
        [str(COMMAND), "simulator", "serve", "--port", "0"],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        match = LISTENING.match(proc.stdout.readline())
        assert match, "the simulator did not start"
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@contextmanager
def _in_process() -> Iterator[str]:
    with Simulator(SimulatorConfig(credentials=CREDS)) as simulator:
        yield simulator.start()


@pytest.fixture(params=["simulator serve", "in-process"])
def base_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with _served() if request.param == "simulator serve" else _in_process() as url:
        production = configuration.Environment.PRODUCTION
        servers = configuration.Configuration.environments[production]
        local = {server: url + urlsplit(uri).path for server, uri in servers.items()}
        monkeypatch.setattr(configuration.Configuration, "environments", {production: local})
        yield url


@pytest.fixture
def client(base_url: str) -> Any:
    """A client holding an OAuth token and a VZ-M2M session, both got through the SDK."""
    credentials = oauth.ThingspaceOauthCredentials(
        oauth_client_id=CREDS.client_id, oauth_client_secret=CREDS.client_secret
    )
    login_client = sdk.VerizonClient(thingspace_oauth_credentials=credentials, timeout=10)
    login = login_client.session_management.start_connectivity_management_session(
        model("LogInRequest")(username=CREDS.username, password=CREDS.password)
    )
    assert login.status_code == 200 and login.body.session_token
    session = m2m_token.VZM2mTokenCredentials(vz_m2m_token=login.body.session_token)
    return sdk.VerizonClient(
        config=login_client.config.clone_with(vz_m2m_token_credentials=session)
    )


def exception(module: str, name: str) -> type[Exception]:
    """One of the SDK's exception classes, from ``verizon.exceptions.<module>``."""
    found: type[Exception] = getattr(importlib.import_module(f"verizon.exceptions.{module}"), name)
    return found


def model(name: str) -> Any:
    """One of the SDK's model classes: ``verizon.models.<snake_case name>.<name>``."""
    module = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return getattr(importlib.import_module(f"verizon.models.{module}"), name)


def ok(response: Any) -> Any:
    assert 200 <= response.status_code < 300, (response.status_code, response.text)
    return response.body


def secret_of(response: Any) -> str:
    headers = {k.lower(): v for k, v in response.headers.items()}
    return str(headers.get(SHARED_SECRET_HEADER.lower(), ""))


def test_without_a_session_the_sdk_gets_a_401(base_url: str) -> None:
    credentials = oauth.ThingspaceOauthCredentials(
        oauth_client_id=CREDS.client_id, oauth_client_secret=CREDS.client_secret
    )
    stale = m2m_token.VZM2mTokenCredentials(vz_m2m_token="not-a-session")
    client = sdk.VerizonClient(
        thingspace_oauth_credentials=credentials, vz_m2m_token_credentials=stale, timeout=10
    )
    with pytest.raises(exception("api_exception", "APIException")) as caught:
        client.connectivity_callbacks.list_registered_callbacks(ACCOUNT)
    assert caught.value.response_code == 401


def test_m2m(client: Any) -> None:
    api = client.connectivity_callbacks
    assert ok(api.list_registered_callbacks(ACCOUNT)) in (None, [])
    body = model("RegisterCallbackRequest")(
        name="DeviceUsage", url="https://hooks.example.com/usage", username="hook"
    )
    registered = ok(api.register_callback(ACCOUNT, body))
    assert (registered.account_name, registered.service_name) == (ACCOUNT, "DeviceUsage")
    [listed] = ok(api.list_registered_callbacks(ACCOUNT))
    assert (listed.service_name, listed.url, listed.username) == (
        "DeviceUsage", "https://hooks.example.com/usage", "hook"
    )  # fmt: skip
    gone = ok(api.deregister_callback(ACCOUNT, "DeviceUsage"))
    assert (gone.account_name, gone.service_name) == (ACCOUNT, "DeviceUsage")
    assert ok(api.list_registered_callbacks(ACCOUNT)) in (None, [])


def test_fota_v1(client: Any) -> None:
    api = client.software_management_callbacks_v1
    assert ok(api.list_registered_callbacks(ACCOUNT)) is None  # an empty body
    body = model("FotaV1CallbackRegistrationRequest")(name="Fota", url="https://f.example.com/1")
    ok(api.register_callback(ACCOUNT, body))
    [listed] = ok(api.list_registered_callbacks(ACCOUNT))
    assert (listed.aname, listed.name, listed.url) == (ACCOUNT, "Fota", "https://f.example.com/1")
    # The SDK's FotaV1SuccessResult {success} (families §5) is what the simulator answers.
    gone = ok(api.deregister_callback(ACCOUNT, "Fota"))
    assert gone.success is True
    assert ok(api.list_registered_callbacks(ACCOUNT)) is None


def test_device_location(client: Any) -> None:
    api = client.device_location_callbacks
    assert ok(api.list_registered_callbacks(ACCOUNT)) is None  # documented: an empty body
    enum = model("CallbackServiceNameEnum")
    secrets = []
    wanted = [
        (enum.LOCATION, "https://l.example.com/a"),
        (enum.DEVICELOCATION, "https://l.example.com/b"),
    ]
    for name, url in wanted:
        response = api.register_callback(
            ACCOUNT, model("DeviceLocationCallback")(name=name, url=url)
        )
        registered = ok(response)
        assert (registered.account, registered.name) == (ACCOUNT, name)
        secrets.append(secret_of(response))
    assert all(len(s) == 64 for s in secrets) and secrets[0] != secrets[1]
    listed = ok(api.list_registered_callbacks(ACCOUNT))
    assert [(cb.name, cb.url) for cb in listed] == [
        ("Location", "https://l.example.com/a"), ("DeviceLocation", "https://l.example.com/b")
    ]  # fmt: skip
    # Re-registering a service replaces its URL (no PUT in this family).
    again = model("DeviceLocationCallback")(name=enum.LOCATION, url="https://l.example.com/c")
    ok(api.register_callback(ACCOUNT, again))
    assert {cb.name: cb.url for cb in ok(api.list_registered_callbacks(ACCOUNT))} == {
        "Location": "https://l.example.com/c", "DeviceLocation": "https://l.example.com/b"
    }  # fmt: skip
    assert ok(api.deregister_callback(ACCOUNT, "Location")).success is True
    assert ok(api.deregister_callback(ACCOUNT, "DeviceLocation")).success is True
    assert ok(api.list_registered_callbacks(ACCOUNT)) is None
    refused = exception("device_location_result_exception", "DeviceLocationResultException")
    with pytest.raises(refused) as caught:
        api.deregister_callback(ACCOUNT, "Location")
    assert caught.value.response_code == 400 and caught.value.error_code == "INVALID_PARAMETER"


def test_diagnostics(client: Any) -> None:
    api = client.diagnostics_callbacks
    assert ok(api.get_diagnostics_subscription_callback_info(ACCOUNT)) in (None, [])
    request = model("CallbackRegistrationRequest")(
        account_name=ACCOUNT,
        service_name="Diagnostics",
        endpoint="https://d.example.com/1",
        http_headers={"X-Hook": "hook-value"},
    )
    response = api.register_diagnostics_callback_url(request)
    registered = ok(response)
    assert len(secret_of(response)) == 64
    assert (registered.account_name, registered.service_name, registered.endpoint) == (
        ACCOUNT, "Diagnostics", "https://d.example.com/1"
    )  # fmt: skip
    assert registered.http_headers == {"X-Hook": "hook-value"}
    # The SDK parses createdOn as RFC 3339 (a bad value would raise, families §3).
    created = registered.created_on.datetime
    assert isinstance(created, datetime) and created.utcoffset() == timedelta(0)
    # POST again is the family's update: the endpoint is replaced, not added.
    request.endpoint = "https://d.example.com/2"
    ok(api.register_diagnostics_callback_url(request))
    [listed] = ok(api.get_diagnostics_subscription_callback_info(ACCOUNT))
    assert (listed.service_name, listed.endpoint) == ("Diagnostics", "https://d.example.com/2")
    assert isinstance(listed.created_on.datetime, datetime)
    gone = ok(api.unregister_diagnostics_callback(ACCOUNT, "Diagnostics"))
    assert (gone.account_name, gone.endpoint) == (ACCOUNT, "https://d.example.com/2")
    assert ok(api.get_diagnostics_subscription_callback_info(ACCOUNT)) in (None, [])


def test_hyper_precise_location(client: Any) -> None:
    api = client.hyper_precise_location_callbacks
    assert ok(api.list_registered_callbacks(ACCOUNT)) in (None, [])
    for name in ("BullseyeReporting", "DeviceUsage"):  # free-form, even an M2M name
        body = model("HyperPreciseLocationCallback")(name=name, url=f"https://h.example.com/{name}")
        registered = ok(api.register_callback(ACCOUNT, body))
        assert (registered.account_name, registered.name) == (ACCOUNT, name)
    listed = ok(api.list_registered_callbacks(ACCOUNT))
    assert [(cb.account_name, cb.name, cb.url) for cb in listed] == [
        (ACCOUNT, "BullseyeReporting", "https://h.example.com/BullseyeReporting"),
        (ACCOUNT, "DeviceUsage", "https://h.example.com/DeviceUsage"),
    ]
    # HPL's DeviceUsage is its own: M2M's list does not show it.
    assert ok(client.connectivity_callbacks.list_registered_callbacks(ACCOUNT)) in (None, [])
    assert api.deregister_callback(ACCOUNT, "DeviceUsage").status_code == 200
    assert [cb.name for cb in ok(api.list_registered_callbacks(ACCOUNT))] == ["BullseyeReporting"]
    assert api.deregister_callback(ACCOUNT, "BullseyeReporting").status_code == 200
    assert ok(api.list_registered_callbacks(ACCOUNT)) in (None, [])
    refused = exception(
        "hyper_precise_location_result_exception", "HyperPreciseLocationResultException"
    )
    with pytest.raises(refused) as caught:
        api.deregister_callback(ACCOUNT, "BullseyeReporting")
    # The SDK overwrites response_code with the body's responseCode (families §0).
    assert caught.value.response.status_code == 400
    assert caught.value.response_code == "INVALID_PARAMETER"
    assert caught.value.fault.code == "INVALID_PARAMETER"


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_fota_v2_and_v3(client: Any, version: str) -> None:
    api = getattr(client, f"software_management_callbacks_{version}")
    request = model(f"Fota{version.upper()}CallbackRegistrationRequest")
    assert ok(api.list_registered_callbacks(ACCOUNT)) is None  # an empty body
    assert ok(api.register_callback(ACCOUNT, request(url="https://f.example.com/1"))).url == (
        "https://f.example.com/1"
    )
    assert ok(api.list_registered_callbacks(ACCOUNT)).url == "https://f.example.com/1"
    assert ok(api.update_callback(ACCOUNT, request(url="https://f.example.com/2"))).url == (
        "https://f.example.com/2"
    )
    assert ok(api.list_registered_callbacks(ACCOUNT)).url == "https://f.example.com/2"
    assert ok(api.deregister_callback(ACCOUNT)).success is True
    assert ok(api.list_registered_callbacks(ACCOUNT)) is None
    refused = exception(f"fota_{version}_result_exception", f"Fota{version.upper()}ResultException")
    with pytest.raises(refused) as caught:
        api.update_callback(ACCOUNT, request(url="https://f.example.com/3"))
    assert caught.value.response_code == 400
