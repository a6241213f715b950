"""End to end: brakes (protect, the delete threshold, --max-deletes) and --account targeting,
the installed ``tscallbacks`` against the simulator, with its request log as the witness."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import Credentials
from tests.e2e_support import DirectApi, Result, base_env, run
from tests.helpers import M2M_SERVICES

pytestmark = pytest.mark.e2e

HOOK = "https://hooks.example.com"
# Ten M2M services: enough registrations for the delete threshold to count.
SERVICES = M2M_SERVICES[:10]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


def seed(sim: Simulator, registrations: Mapping[str, tuple[str, ...]]) -> None:
    """Register services directly (as another tool would), then forget those requests."""
    api = DirectApi(sim.base_url)
    for account, services in registrations.items():
        for service in services:
            api.register(account, service, f"{HOOK}/{account}/{service}")
    sim.clear_requests()


def write_config(path: Path, accounts: dict[str, str]) -> Path:
    """A configuration from {account: YAML body of the account}."""
    lines = ["version: 1", "accounts:"]
    for name, body in accounts.items():
        lines.append(f'  "{name}":')
        lines.extend(f"    {line}" for line in body.strip("\n").splitlines())
    path.write_text("\n".join(lines) + "\n")
    return path


def declared(account: str, services: tuple[str, ...]) -> str:
    """The callbacks block declaring ``services`` of ``account`` as seeded."""
    if not services:
        return "callbacks: {}\n"
    entries = "".join(f"  {s}:\n    url: {HOOK}/{account}/{s}\n" for s in services)
    return "callbacks:\n" + entries


def writes(sim: Simulator) -> list[tuple[str, str | None]]:
    return [
        (r.method, r.account)
        for r in sim.requests()
        if r.method in ("POST", "DELETE", "PUT") and "/callbacks/" in r.path
    ]


def accounts_requested(sim: Simulator) -> set[str]:
    return {r.account for r in sim.requests() if r.account is not None}


def registered(sim: Simulator, account: str) -> set[str]:
    return {item["serviceName"] for item in DirectApi(sim.base_url).list(account)}


def apply(sim: Simulator, config: Path, *flags: str) -> Result:
    return run("apply", "-c", str(config), "--auto-approve", *flags, env=base_env(sim.base_url))


# -- protect ---------------------------------------------------------------------------------


def test_pruning_a_protected_account_is_refused_with_no_write(
    sim: Simulator, tmp_path: Path
) -> None:
    seed(sim, {"prot-1": ("DeviceUsage", "CarrierService", "AlertService")})
    config = write_config(
        tmp_path / "c.yaml", {"prot-1": "protect: true\n" + declared("prot-1", ("DeviceUsage",))}
    )
    result = apply(sim, config)
    assert result.code == 1, result.output
    assert result.stderr.splitlines() == [
        "Error: prot-1/AlertService: refusing to delete a protected registration; "
        "--allow-protected lets it through",
        "Error: prot-1/CarrierService: refusing to delete a protected registration; "
        "--allow-protected lets it through",
        "Error: refusing to apply: nothing was changed",
    ]
    assert "- destroy prot-1/AlertService (m2m) [protected]" in result.stdout
    assert "# why: not declared; prune is on for this account" in result.stdout
    assert writes(sim) == []
    assert registered(sim, "prot-1") == {"DeviceUsage", "CarrierService", "AlertService"}


def test_allow_protected_lets_it_through(sim: Simulator, tmp_path: Path) -> None:
    seed(sim, {"prot-1": ("DeviceUsage", "CarrierService")})
    config = write_config(
        tmp_path / "c.yaml", {"prot-1": "protect: true\n" + declared("prot-1", ("DeviceUsage",))}
    )
    result = apply(sim, config, "--allow-protected")
    assert result.code == 0, result.output
    assert "Safety: --allow-protected lets this plan through" in result.stdout
    assert writes(sim) == [("DELETE", "prot-1")]
    assert registered(sim, "prot-1") == {"DeviceUsage"}


def test_a_protected_registration_is_not_changed_but_protect_alone_is_no_change(
    sim: Simulator, tmp_path: Path
) -> None:
    seed(sim, {"acct-1": ("DeviceUsage",)})
    same = f"callbacks:\n  DeviceUsage:\n    url: {HOOK}/acct-1/DeviceUsage\n    protect: true\n"
    config = write_config(tmp_path / "c.yaml", {"acct-1": same})
    unchanged = run("plan", "-c", str(config), "--detailed-exitcode", env=base_env(sim.base_url))
    assert unchanged.code == 0, unchanged.output  # protect is never a difference by itself

    moved = same.replace("/acct-1/DeviceUsage", "/moved")
    write_config(config, {"acct-1": moved})
    plan = run("plan", "-c", str(config), "--output", "json", env=base_env(sim.base_url))
    change = json.loads(plan.stdout)["changes"][0]
    assert (change["action"], change["protected"], change["reason"]) == ("update", True, None)
    refused = apply(sim, config)
    assert refused.code == 1
    assert "acct-1/DeviceUsage: refusing to update a protected registration" in refused.stderr
    assert writes(sim) == []
    assert apply(sim, config, "--allow-protected").code == 0
    assert writes(sim) == [("POST", "acct-1")]


def test_plan_shows_protected_changes_and_still_exits_2(sim: Simulator, tmp_path: Path) -> None:
    seed(sim, {"prot-1": ("DeviceUsage", "CarrierService")})
    config = write_config(
        tmp_path / "c.yaml", {"prot-1": "protect: true\n" + declared("prot-1", ("DeviceUsage",))}
    )
    env = base_env(sim.base_url)
    text = run("plan", "-c", str(config), "--detailed-exitcode", env=env)
    assert text.code == 2, text.output
    assert "- destroy prot-1/CarrierService (m2m) [protected]" in text.stdout
    assert (
        "Safety: apply refuses this plan without --allow-protected: 1 change touches "
        "protected registrations." in text.stdout
    )
    markdown = run("plan", "-c", str(config), "--output", "markdown", env=env)
    assert "| **delete** (protected) | CarrierService |" in markdown.stdout
    assert "<summary>prot-1: 1 to delete</summary>" in markdown.stdout
    doc = json.loads(run("plan", "-c", str(config), "--output", "json", env=env).stdout)
    assert doc["changes"][0]["protected"] is True
    assert doc["safety"]["apply_refused"] is True
    assert writes(sim) == []


# -- the delete threshold and --max-deletes --------------------------------------------------


def test_deleting_over_the_threshold_is_refused_and_force_lets_it_through(
    sim: Simulator, tmp_path: Path
) -> None:
    seed(sim, {"fleet-1": SERVICES})  # 10 managed registrations
    config = write_config(tmp_path / "c.yaml", {"fleet-1": declared("fleet-1", SERVICES[:6])})
    refused = apply(sim, config)
    assert refused.code == 1, refused.output
    assert refused.stderr.splitlines() == [
        "Error: 4 of 10 managed registrations (40 %) would be deleted, more than 30 %; "
        "--force lets it through",
        "Error: refusing to apply: nothing was changed",
    ]
    assert (
        "Safety: apply refuses this plan without --force: 4 of 10 managed registrations "
        "(40 %) would be deleted, more than 30 %." in refused.stdout
    )
    assert writes(sim) == []

    forced = apply(sim, config, "--force")
    assert forced.code == 0, forced.output
    assert writes(sim) == [("DELETE", "fleet-1")] * 4
    assert registered(sim, "fleet-1") == set(SERVICES[:6])


def test_at_the_threshold_apply_goes_ahead(sim: Simulator, tmp_path: Path) -> None:
    seed(sim, {"fleet-1": SERVICES})
    config = write_config(tmp_path / "c.yaml", {"fleet-1": declared("fleet-1", SERVICES[:7])})
    result = apply(sim, config)  # 3 of 10: 30 %, not more
    assert result.code == 0, result.output
    assert "Safety" not in result.stdout
    assert len(writes(sim)) == 3


def test_max_deletes(sim: Simulator, tmp_path: Path) -> None:
    seed(sim, {"small-1": ("DeviceUsage", "CarrierService", "AlertService")})
    config = write_config(tmp_path / "c.yaml", {"small-1": declared("small-1", ("DeviceUsage",))})
    refused = apply(sim, config, "--max-deletes", "1")
    assert refused.code == 1, refused.output
    assert (
        "Error: 2 registrations would be deleted, more than --max-deletes 1; "
        "--force lets it through" in refused.stderr
    )
    assert writes(sim) == []
    both = apply(sim, config, "--max-deletes", "1", "--force")
    assert both.code == 1
    assert both.stderr == "Error: --force releases --max-deletes; give one or the other\n"
    assert apply(sim, config, "--max-deletes", "2").code == 0
    assert writes(sim) == [("DELETE", "small-1")] * 2


def test_plan_json_says_which_rule_fired(sim: Simulator, tmp_path: Path) -> None:
    seed(sim, {"fleet-1": SERVICES})
    config = write_config(tmp_path / "c.yaml", {"fleet-1": declared("fleet-1", ())})
    env = base_env(sim.base_url)
    result = run("plan", "-c", str(config), "--output", "json", "--max-deletes", "5", env=env)
    assert result.code == 0, result.output
    safety = json.loads(result.stdout)["safety"]
    assert safety["managed"] == 10 and safety["apply_refused"] is True
    assert [(b["rule"], b["flag"], b["released"]) for b in safety["brakes"]] == [
        ("delete-threshold", "--force", False),
        ("max-deletes", "--force", False),
    ]


# -- --account ---------------------------------------------------------------------------------

FLEET = {"a-1": ("DeviceUsage",), "a-2": ("DeviceUsage",), "b-1": ("DeviceUsage",)}


def fleet_config(path: Path) -> Path:
    """Every account of FLEET moves its DeviceUsage hook: one update each."""
    moved = f"callbacks:\n  DeviceUsage:\n    url: {HOOK}/moved\n"
    return write_config(path, dict.fromkeys(FLEET, moved))


def test_account_glob_reads_and_writes_only_matching_accounts(
    sim: Simulator, tmp_path: Path
) -> None:
    seed(sim, FLEET)
    config = fleet_config(tmp_path / "c.yaml")
    env = base_env(sim.base_url)
    planned = run("plan", "-c", str(config), "--account", "a-*", env=env)
    assert planned.code == 0, planned.output
    assert "~ update a-1/DeviceUsage" in planned.stdout
    assert "b-1" not in planned.stdout
    assert "Note: targeted run: --account 'a-*' selects 2 accounts" in planned.stdout
    assert accounts_requested(sim) == {"a-1", "a-2"}

    sim.clear_requests()
    applied = apply(sim, config, "--account", "a-*")
    assert applied.code == 0, applied.output
    assert accounts_requested(sim) == {"a-1", "a-2"}
    assert sorted(writes(sim)) == [("POST", "a-1"), ("POST", "a-2")]

    sim.clear_requests()
    exact = apply(sim, config, "--account", "b-1", "--account", "a-1")
    assert exact.code == 0, exact.output
    assert accounts_requested(sim) == {"a-1", "b-1"}
    assert writes(sim) == [("POST", "b-1")]  # a-1 had converged already


def test_a_pattern_matching_nothing_is_an_error_before_any_request(
    sim: Simulator, tmp_path: Path
) -> None:
    seed(sim, FLEET)
    config = fleet_config(tmp_path / "c.yaml")
    for command in ("plan", "apply"):
        result = run(
            command,
            "-c",
            str(config),
            "--auto-approve" if command == "apply" else "--detailed-exitcode",
            "--account",
            "a-*",
            "--account",
            "fleet-*",
            env=base_env(sim.base_url),
        )
        assert result.code == 1
        assert (
            result.stderr == "Error: --account 'fleet-*' matches no account in the configuration\n"
        )
    assert sim.requests() == []


def test_export_refuses_patterns(sim: Simulator) -> None:
    result = run("export", "--account", "a-*", env=base_env(sim.base_url))
    assert result.code == 1
    assert result.stderr == (
        "Error: --account 'a-*': export takes exact account names, not patterns "
        "(patterns select configured accounts in plan and apply)\n"
    )
    assert sim.requests() == []


# -- saved plans keep their target and their overrides ------------------------------------


def test_saved_plan_target_cannot_be_widened(sim: Simulator, tmp_path: Path) -> None:
    seed(sim, FLEET)
    config = fleet_config(tmp_path / "c.yaml")
    planfile = tmp_path / "plan.json"
    env = base_env(sim.base_url)
    made = run("plan", "-c", str(config), "--account", "a-*", "--out", str(planfile), env=env)
    assert made.code == 0, made.output
    assert json.loads(planfile.read_text())["target"] == {
        "patterns": ["a-*"],
        "accounts": ["a-1", "a-2"],
    }

    for patterns in (["*"], ["a-1", "b-1"]):
        sim.clear_requests()
        flags = [arg for p in patterns for arg in ("--account", p)]
        wider = run("apply", "--auto-approve", *flags, str(planfile), env=env)
        assert wider.code == 1
        assert "--account would widen the saved plan: it selects 'b-1'" in wider.stderr
        assert sim.requests() == []  # refused before anything was read

    narrower = run("apply", "--auto-approve", "--account", "a-1", str(planfile), env=env)
    assert narrower.code == 1
    assert "--account leaves out 'a-2', which the saved plan covers" in narrower.stderr
    assert sim.requests() == []

    # An account added since that the patterns would match now is not in the plan either.
    body = f"callbacks:\n  DeviceUsage:\n    url: {HOOK}/moved\n"
    write_config(config, {**dict.fromkeys(FLEET, body), "a-3": body})
    applied = run("apply", "--auto-approve", str(planfile), env=env)
    assert applied.code == 0, applied.output
    assert accounts_requested(sim) == {"a-1", "a-2"}
    assert sorted(writes(sim)) == [("POST", "a-1"), ("POST", "a-2")]


def test_saved_plan_is_applied_with_the_overrides_it_was_made_with(
    sim: Simulator, tmp_path: Path
) -> None:
    seed(sim, {"prot-1": ("DeviceUsage", "CarrierService")})
    config = write_config(
        tmp_path / "c.yaml", {"prot-1": "protect: true\n" + declared("prot-1", ("DeviceUsage",))}
    )
    planfile = tmp_path / "plan.json"
    env = base_env(sim.base_url)
    assert run("plan", "-c", str(config), "--out", str(planfile), env=env).code == 0
    sim.clear_requests()

    more = run("apply", "--auto-approve", "--allow-protected", str(planfile), env=env)
    assert more.code == 1
    assert "the plan was made without --allow-protected; apply PLANFILE cannot add it" in (
        more.stderr
    )
    assert sim.requests() == []
    plain = run("apply", "--auto-approve", str(planfile), env=env)
    assert plain.code == 1
    assert "refusing to delete a protected registration" in plain.stderr
    assert writes(sim) == []

    made = run("plan", "-c", str(config), "--allow-protected", "--out", str(planfile), env=env)
    assert made.code == 0, made.output
    assert "Safety: --allow-protected lets this plan through" in made.stdout
    applied = run("apply", "--auto-approve", str(planfile), env=env)
    assert applied.code == 0, applied.output
    assert writes(sim) == [("DELETE", "prot-1")]


def test_a_lower_max_deletes_still_holds_a_saved_plan(sim: Simulator, tmp_path: Path) -> None:
    seed(sim, {"small-1": ("DeviceUsage", "CarrierService", "AlertService")})
    config = write_config(tmp_path / "c.yaml", {"small-1": declared("small-1", ("DeviceUsage",))})
    planfile = tmp_path / "plan.json"
    env = base_env(sim.base_url)
    made = run("plan", "-c", str(config), "--max-deletes", "2", "--out", str(planfile), env=env)
    assert made.code == 0, made.output
    higher = run("apply", "--auto-approve", "--max-deletes", "5", str(planfile), env=env)
    assert higher.code == 1
    assert "the plan was made without --max-deletes 5" in higher.stderr
    lower = run("apply", "--auto-approve", "--max-deletes", "1", str(planfile), env=env)
    assert lower.code == 1
    assert "2 registrations would be deleted, more than --max-deletes 1" in lower.stderr
    assert writes(sim) == []
    assert run("apply", "--auto-approve", str(planfile), env=env).code == 0
    assert len(writes(sim)) == 2

    seed(sim, {"small-1": ("CarrierService", "AlertService")})
    forced = run("plan", "-c", str(config), "--force", "--out", str(planfile), env=env)
    assert forced.code == 0, forced.output
    capped = run("apply", "--auto-approve", "--max-deletes", "1", str(planfile), env=env)
    assert capped.code == 1
    assert "the plan was made with --force, which releases --max-deletes" in capped.stderr
    assert writes(sim) == []
