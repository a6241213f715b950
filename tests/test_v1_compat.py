"""A version-1 configuration from before the five new families plans exactly as before.

``tests/golden/v1/`` holds ``examples/callbacks.yaml`` as it was on main before issue 10,
and what main's ``tscallbacks plan`` printed for it (text, Markdown, JSON) against the
fixed simulator state below, with the requests it made (generated with main's code).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import Credentials
from tests.e2e_support import REPO, DirectApi, base_env, run

pytestmark = pytest.mark.e2e

GOLDEN = REPO / "tests" / "golden" / "v1"
A1, A2, SANDBOX = "0252012345-00001", "0252012345-00002", "TestAccount-2"
HOOKS = "https://hooks.acme-iot.example.com/thingspace"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


def _seed(sim: Simulator) -> None:
    """The remote state the golden files were made against: an update, a prune, a
    FOTA drift, and a registration left alone under prune: false."""
    api = DirectApi(sim.base_url)
    api.register(A1, "DeviceUsage", f"{HOOKS}/usage-OLD")
    api.register(A1, "CarrierService", f"{HOOKS}/carrier")
    api.register(A1, "StateService", "https://old.example.com/state")
    api.register(A1, "Fota", f"{HOOKS}/fota")
    api.register(A2, "DeviceUsage", f"{HOOKS}/usage-fleet2")
    api.register(A2, "Fota", "https://elsewhere.example.com/fota")
    api.register(SANDBOX, "AlertService", "https://sandbox-hooks.acme-iot.example.com:50551/alerts")
    api.register(SANDBOX, "DeviceUsage", "https://other-tool.example.com/usage")


@pytest.mark.parametrize(("output", "golden"), [("text", "txt"), ("markdown", "md"),
                                                ("json", "json")])  # fmt: skip
def test_a_version_1_file_plans_byte_for_byte_as_before(
    sim: Simulator, output: str, golden: str
) -> None:
    _seed(sim)
    sim.clear_requests()
    config = GOLDEN / "callbacks.yaml"
    result = run("plan", "-c", str(config), "--output", output, env=base_env(sim.base_url))
    assert result.code == 0, result.output
    assert result.stderr == ""
    assert result.stdout == (GOLDEN / f"plan.{golden}").read_text()
    made = sorted(f"{r.method} {r.path}" for r in sim.requests())
    assert made == (GOLDEN / "requests.txt").read_text().splitlines()


def test_a_thousand_m2m_accounts_read_two_listings_each_as_before(
    sim: Simulator, tmp_path: Path
) -> None:
    """Measured on main before issue 10: 2,000 list calls (m2m and fota per account) and
    2,003 requests in all (a token, a login, a logout)."""
    lines = ["version: 1", "accounts:"]
    for i in range(1000):
        lines += [f'  "acct-{i:04d}":', "    callbacks:", "      DeviceUsage:",
                  f"        url: https://h.example.com/u{i}"]  # fmt: skip
    config = tmp_path / "fleet.yaml"
    config.write_text("\n".join(lines) + "\n")
    result = run("plan", "-c", str(config), "-q", "--parallelism", "16",
                 env=base_env(sim.base_url), timeout=300)  # fmt: skip
    assert result.code == 0, result.output
    assert "Plan: 1000 to create, 0 to update, 0 to delete." in result.stdout
    records = sim.requests()
    lists = [r for r in records if r.method == "GET"]
    assert len(lists) == 2000 and len(records) == 2003
    per_account = collections.Counter(r.account for r in lists)
    assert set(per_account.values()) == {2} and len(per_account) == 1000
    assert {r.path.split("/")[2] for r in lists} == {"m2m", "fota"}
