"""``--rate-limit R``: at most R requests per second across all workers, every attempt
counted (token, login, listings, writes, retries). Time is injected: no timed asserts."""

from __future__ import annotations

import itertools
import math
import threading

import pytest
import requests_mock as rm

from reconciler.core.errors import UsageError
from reconciler.core.families import M2M
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.guard import RunStopped
from reconciler.thingspace.options import ClientOptions
from reconciler.thingspace.ratelimit import RateLimiter, check_rate
from tests.e2e_support import EXAMPLE, SMS_SECRET, base_env, run

BASE = "https://ts.example.test"
ACCOUNT = "0252012345-00001"
LIST = f"{BASE}/api/m2m/v1/callbacks/{ACCOUNT}"
CREDS = Credentials(client_id="id", client_secret="secret", username="user", password="pw")


class Clock:
    """Moves only when a sleep moves it."""

    def __init__(self) -> None:
        self.now = 500.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


# -- the limiter ---------------------------------------------------------------------------


def test_slots_are_evenly_spaced_from_the_first_request() -> None:
    clock = Clock()
    limiter = RateLimiter(4, clock=clock)
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]


def test_waiting_out_each_slot_sends_at_exactly_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.5, clock=clock)
    sent = []
    for _ in range(6):
        clock.sleep(limiter.reserve())
        sent.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(math.isclose(g, 0.4) for g in gaps), gaps


def test_idle_time_builds_no_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    assert limiter.reserve() == 0.0
    clock.now += 60.0  # a minute without requests
    assert limiter.reserve() == 0.0
    assert math.isclose(limiter.reserve(), 0.1)  # the next one still waits its slot
    clock.now += 0.05  # part of the way to the next slot
    assert math.isclose(limiter.reserve(), 0.15)


def test_every_slot_goes_to_exactly_one_thread() -> None:
    clock = Clock()
    limiter = RateLimiter(100, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            wait = limiter.reserve()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(w * 100) for w in waits) == list(range(400))


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_the_rate_must_be_a_finite_number_above_zero(value: float) -> None:
    with pytest.raises(UsageError, match="above 0"):
        check_rate(value)
    with pytest.raises(UsageError, match="above 0"):
        ClientOptions(rate_limit=value)


# -- through the client ----------------------------------------------------------------------


def limited_client(clock: Clock, rate: float) -> ThingSpaceClient:
    return ThingSpaceClient(
        BASE,
        CREDS,
        options=ClientOptions(rate_limit=rate),
        sleep=clock.sleep,
        clock=clock,
    )


def test_every_request_counts_logins_and_retries_included(requests_mock: rm.Mocker) -> None:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "b", "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "s"})
    requests_mock.get(
        LIST,
        [
            {"status_code": 429, "headers": {"Retry-After": "0"}},
            {"json": []},
            {"json": []},
        ],
    )
    clock = Clock()
    client = limited_client(clock, rate=2)
    client.listing(ACCOUNT, M2M)  # token, login, a 429, its retry
    client.listing(ACCOUNT, M2M)
    assert len(requests_mock.request_history) == 5
    # Each attempt after the first waited for its slot, half a second apart; the retry's
    # own backoff (Retry-After: 0) added nothing.
    assert [s for s in clock.sleeps if s > 0] == [0.5, 0.5, 0.5, 0.5]
    assert clock.now == 502.0


def test_no_limit_means_no_wait(requests_mock: rm.Mocker) -> None:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "b", "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "s"})
    requests_mock.get(LIST, json=[])
    clock = Clock()
    client = ThingSpaceClient(BASE, CREDS, sleep=clock.sleep, clock=clock)
    for _ in range(3):
        client.listing(ACCOUNT, M2M)
    assert clock.sleeps == []


def test_a_wait_past_the_deadline_stops_the_run_before_sending(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.post(BASE + TOKEN_PATH, json={"access_token": "b", "expires_in": 3600})
    requests_mock.post(BASE + LOGIN_PATH, json={"sessionToken": "s"})
    requests_mock.get(LIST, json=[])
    clock = Clock()
    client = ThingSpaceClient(
        BASE,
        CREDS,
        options=ClientOptions(rate_limit=0.1, deadline=15.0),  # a slot every 10 s
        sleep=clock.sleep,
        clock=clock,
    )
    with pytest.raises(RunStopped, match="rate limit") as stopped:
        client.listing(ACCOUNT, M2M)  # token now, login at 10 s, the listing at 20 s
    assert "for the rate limit would pass the run's deadline of 15 s" in str(stopped.value)
    assert len(requests_mock.request_history) == 2


# -- the flag --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-2", "nan", "inf", "fast", ""])
def test_a_bad_rate_limit_is_a_one_line_error(value: str) -> None:
    for command in ("plan", "apply"):
        result = run(command, "--rate-limit", value, env=base_env("http://127.0.0.1:9"))
        assert result.code == 1, result.output
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
        assert "argument --rate-limit: " in result.stderr


def test_a_limited_run_works_end_to_end() -> None:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config) as sim:
        result = run(
            "plan", "-c", str(EXAMPLE), "--rate-limit", "500",
            env=base_env(sim.base_url, SMS_HOOK_PASSWORD=SMS_SECRET),
        )  # fmt: skip
        assert result.code == 0, result.output
        assert sim.request_counts().total == 8  # token, login, five listings, logout
