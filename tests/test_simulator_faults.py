"""Fault injection: the settings value, the controller, each fault over HTTP, start-up flags."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from reconciler.cli.commands.simulator import build_simulator, fault_settings
from reconciler.cli.parser import add_serve_arguments
from reconciler.core.errors import UsageError
from reconciler.simulator import (
    FaultController,
    FaultSettings,
    Simulator,
    SimulatorConfig,
    SimulatorError,
)
from reconciler.simulator.faults import FaultKind
from reconciler.thingspace.credentials import Credentials

CREDS = Credentials.for_simulator({})
ACCOUNT = "0252012345-00001"
OTHER = "0252012345-00002"
TIMEOUT = 10
URL = "https://hooks.example.com/x"


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        r = requests.post(
            f"{base}/api/ts/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(CREDS.client_id, CREDS.client_secret),
            timeout=TIMEOUT,
        )
        token = r.json()["access_token"]
        r = requests.post(
            f"{base}/api/m2m/v1/session/login",
            json={"username": CREDS.username, "password": CREDS.password},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        self.headers = {
            "Authorization": f"Bearer {token}",
            "VZ-M2M-Token": r.json()["sessionToken"],
        }

    def list(self, account: str = ACCOUNT) -> requests.Response:
        return requests.get(
            f"{self.base}/api/m2m/v1/callbacks/{account}", headers=self.headers, timeout=TIMEOUT
        )

    def register(self, account: str = ACCOUNT, name: str = "DeviceUsage") -> requests.Response:
        return requests.post(
            f"{self.base}/api/m2m/v1/callbacks/{account}",
            json={"name": name, "url": URL},
            headers=self.headers,
            timeout=TIMEOUT,
        )

    def deregister(self, account: str = ACCOUNT, name: str = "DeviceUsage") -> requests.Response:
        return requests.delete(
            f"{self.base}/api/m2m/v1/callbacks/{account}/name/{name}",
            headers=self.headers,
            timeout=TIMEOUT,
        )


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(credentials=CREDS)) as simulator:
        yield simulator


@pytest.fixture
def client(sim: Simulator) -> Client:
    return Client(sim.base_url)


def admin(sim: Simulator, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{sim.base_url}/_simulator/{path}", timeout=TIMEOUT, **kw)


# --- settings value ----------------------------------------------------------------------


def test_settings_round_trip_through_dict() -> None:
    settings = FaultSettings(latency_ms=5, rate_limit_fraction=0.25, seed=3, fail_writes={"a": 500})
    data = settings.to_dict()
    assert data["fail_writes"] == {"a": 500} and data["seed"] == 3
    assert FaultSettings.from_dict(data) == settings
    assert hash(FaultSettings.from_dict(data)) == hash(settings)


def test_from_dict_merges_over_a_base() -> None:
    base = FaultSettings(latency_ms=5, drop_next=2)
    merged = FaultSettings.from_dict({"server_error_next": 1}, base=base)
    assert (merged.latency_ms, merged.drop_next, merged.server_error_next) == (5, 2, 1)


def test_fail_writes_cannot_be_mutated_through_the_value() -> None:
    source = {"a": 500}
    settings = FaultSettings(fail_writes=source)
    source["b"] = 503
    assert dict(settings.fail_writes) == {"a": 500}
    with pytest.raises(TypeError):
        settings.fail_writes["c"] = 400  # type: ignore[index]


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"nope": 1},
        {"latency_ms": "5"},
        {"latency_ms": -1},
        {"drop_next": True},
        {"rate_limit_fraction": 1.5},
        {"rate_limit_fraction": "0.5"},
        {"server_error_status": 404},
        {"seed": 1.5},
        {"fail_writes": {"a": "500"}},
        {"fail_writes": {"a": 200}},
        {"fail_writes": ["a"]},
    ],
)
def test_from_dict_refuses_bad_settings(data: Any) -> None:
    with pytest.raises(SimulatorError):
        FaultSettings.from_dict(data)


# --- controller --------------------------------------------------------------------------


def test_controller_counts_down_in_order() -> None:
    controller = FaultController(FaultSettings(drop_next=1, server_error_next=1, rate_limit_next=2))
    kinds = [controller.decide().kind for _ in range(5)]
    assert kinds == [FaultKind.DROP, FaultKind.SERVER_ERROR, FaultKind.RATE_LIMIT,
                     FaultKind.RATE_LIMIT, None]  # fmt: skip
    assert controller.settings().rate_limit_next == 0


def test_controller_seeded_fraction_is_reproducible() -> None:
    def pattern(seed: int) -> list[bool]:
        controller = FaultController(FaultSettings(rate_limit_fraction=0.5, seed=seed))
        return [controller.decide().kind is FaultKind.RATE_LIMIT for _ in range(64)]

    assert pattern(11) == pattern(11)
    assert pattern(11) != pattern(12)
    assert 10 < sum(pattern(11)) < 54


# --- faults over HTTP --------------------------------------------------------------------


def test_latency_is_measurable(sim: Simulator, client: Client) -> None:
    start = time.monotonic()
    assert client.list().status_code == 200
    baseline = time.monotonic() - start
    sim.set_faults(FaultSettings(latency_ms=200))
    start = time.monotonic()
    assert client.list().status_code == 200
    assert time.monotonic() - start >= 0.2 > baseline


def test_rate_limit_next_k_then_normal(sim: Simulator, client: Client) -> None:
    sim.set_faults(FaultSettings(rate_limit_next=2, retry_after=7))
    for _ in range(2):
        r = client.list()
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        assert set(r.json()) == {"errorCode", "errorMessage"}
    assert client.list().status_code == 200
    assert [rec.status for rec in sim.requests()[-3:]] == [429, 429, 200]


def test_seeded_fraction_is_reproducible_over_http() -> None:
    def statuses() -> list[int]:
        with Simulator(SimulatorConfig(credentials=CREDS)) as simulator:
            client = Client(simulator.base_url)
            simulator.set_faults(FaultSettings(rate_limit_fraction=0.5, seed=1234))
            return [client.list().status_code for _ in range(30)]

    first, second = statuses(), statuses()
    assert first == second
    assert set(first) == {200, 429}


def test_server_errors_next_k_with_configurable_status(sim: Simulator, client: Client) -> None:
    sim.set_faults(FaultSettings(server_error_next=2, server_error_status=502))
    assert [client.list().status_code for _ in range(3)] == [502, 502, 200]
    sim.set_faults(FaultSettings(server_error_next=1))
    r = client.register()
    assert r.status_code == 503 and r.json()["errorCode"]
    assert sim.snapshot()["accounts"] == {}  # the failed write did not happen


def test_account_write_failure_hits_only_that_account_and_only_writes(
    sim: Simulator, client: Client
) -> None:
    assert client.register(ACCOUNT, "QoS").status_code == 200
    sim.set_faults(FaultSettings(fail_writes={ACCOUNT: 500}))
    r = client.register(ACCOUNT)
    assert r.status_code == 500 and set(r.json()) == {"errorCode", "errorMessage"}
    assert client.deregister(ACCOUNT, "QoS").status_code == 500
    assert client.list(ACCOUNT).status_code == 200  # reads still work
    assert client.register(OTHER).status_code == 200
    assert client.deregister(OTHER).status_code == 200
    assert list(sim.snapshot()["accounts"]) == [ACCOUNT]
    assert list(sim.snapshot()["accounts"][ACCOUNT]) == ["QoS"]


def test_account_write_failure_applies_to_fota_writes(sim: Simulator, client: Client) -> None:
    sim.set_faults(FaultSettings(fail_writes={ACCOUNT: 409}))
    r = requests.post(
        f"{sim.base_url}/api/fota/v1/callbacks/{ACCOUNT}",
        json={"name": "Fota", "url": URL},
        headers=client.headers,
        timeout=TIMEOUT,
    )
    assert r.status_code == 409 and "errorCode" in r.json()


def test_dropped_connection_raises_on_the_client(sim: Simulator, client: Client) -> None:
    sim.set_faults(FaultSettings(drop_next=2))
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            client.register()
    assert client.list().status_code == 200
    assert [rec.status for rec in sim.requests()[-3:]] == [None, None, 200]


def test_faults_do_not_touch_the_admin_endpoint(sim: Simulator) -> None:
    sim.set_faults(FaultSettings(drop_next=5, server_error_next=5))
    assert admin(sim, "GET", "state").status_code == 200
    assert admin(sim, "GET", "faults").json()["drop_next"] == 5


def test_startup_faults_from_config() -> None:
    config = SimulatorConfig(credentials=CREDS, faults=FaultSettings(server_error_next=1))
    with Simulator(config) as simulator:
        r = requests.post(f"{simulator.base_url}/api/ts/v1/oauth2/token", timeout=TIMEOUT)
        assert r.status_code == 503
        assert Client(simulator.base_url).list().status_code == 200


def test_admin_faults_read_merge_clear(sim: Simulator, client: Client) -> None:
    assert admin(sim, "GET", "faults").json() == FaultSettings().to_dict()
    r = admin(sim, "POST", "faults", json={"rate_limit_next": 1, "retry_after": 3})
    assert r.status_code == 200 and r.json()["rate_limit_next"] == 1
    r = admin(sim, "POST", "faults", json={"fail_writes": {OTHER: 503}})
    assert r.json()["rate_limit_next"] == 1 and r.json()["retry_after"] == 3  # merged
    assert client.list().headers["Retry-After"] == "3"
    assert admin(sim, "GET", "faults").json()["rate_limit_next"] == 0  # consumed
    assert client.register(OTHER).status_code == 503
    assert admin(sim, "DELETE", "faults").json() == FaultSettings().to_dict()
    assert client.register(OTHER).status_code == 200


@pytest.mark.parametrize("body", [b"{bad", b"[]", b'{"latency_ms": -5}', b'{"x": 1}'])
def test_admin_faults_refuses_bad_settings(sim: Simulator, body: bytes) -> None:
    r = admin(sim, "POST", "faults", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and set(r.json()) == {"errorCode", "errorMessage"}
    assert admin(sim, "GET", "faults").json() == FaultSettings().to_dict()


# --- start-up flags ----------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def test_fault_flags_build_settings() -> None:
    args = parse(
        "--latency-ms", "20", "--rate-limit-next", "3", "--rate-limit-fraction", "0.1",
        "--retry-after", "4", "--seed", "9", "--server-error-next", "2",
        "--server-error-status", "500", "--fail-writes", "A=500", "--fail-writes", "B=x=409",
        "--drop-next", "1",
    )  # fmt: skip
    assert fault_settings(args) == FaultSettings(
        latency_ms=20, rate_limit_next=3, rate_limit_fraction=0.1, retry_after=4,
        seed=9, server_error_next=2, server_error_status=500,
        fail_writes={"A": 500, "B=x": 409}, drop_next=1,
    )  # fmt: skip
    assert fault_settings(parse()) == FaultSettings()


@pytest.mark.parametrize(
    "argv",
    [
        ("--latency-ms", "-1"),
        ("--latency-ms", "soon"),
        ("--rate-limit-fraction", "2"),
        ("--rate-limit-fraction", "nan"),
        ("--server-error-status", "404"),
        ("--fail-writes", "A"),
        ("--fail-writes", "=500"),
        ("--fail-writes", "A=200"),
        ("--drop-next", "1.5"),
        ("--seed", "abc"),
        ("--port", "70000"),
        ("--session-idle", "0"),
        ("--accounts", ","),
    ],
)
def test_bad_flag_values_are_one_line_usage_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(UsageError) as info:
        build_simulator(parse(*argv), env={}).stop()
    message = str(info.value)
    assert "\n" not in message and argv[0] in message
