"""``--shard K/N``: a stable split of the configured accounts between N jobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.core.errors import UsageError
from reconciler.core.model import DesiredState
from reconciler.engine.saved_plan import PlanFileError, check_accounts, read_saved_plan
from reconciler.engine.target import Shard, select
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import Credentials
from tests.e2e_support import base_env, run
from tests.helpers import desired as declared

FLEET = tuple(f"0252{n:06d}-00001" for n in range(300))


def state(names: tuple[str, ...]) -> DesiredState:
    return declared({name: {} for name in names})


# -- the split ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1/1", "1/4", "4/4", " 2/3 ", "007/9"])
def test_good_shards_parse(text: str) -> None:
    shard = Shard.parse(text)
    assert str(shard) == f"{int(text.strip().split('/')[0])}/{int(text.strip().split('/')[1])}"


@pytest.mark.parametrize(
    "text",
    ["0/4", "5/4", "1/0", "0/0", "-1/4", "1", "1/", "/4", "a/b", "1/4/5", "", "1.0/4", "²/4"],
)
def test_bad_shards_are_one_line_errors(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--shard takes K/N, two whole numbers") as info:
        Shard.parse(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_every_account_falls_in_exactly_one_shard_and_the_shards_are_even(count: int) -> None:
    shards = [Shard(k, count) for k in range(1, count + 1)]
    fleet = [f"0252{n:06d}-{n % 7:05d}" for n in range(3200)]
    for name in fleet:
        assert sum(s.holds(name) for s in shards) == 1, name
    sizes = [sum(s.holds(n) for n in fleet) for s in shards]
    assert all(abs(size - len(fleet) / count) <= 0.25 * len(fleet) / count for size in sizes)


def test_the_split_is_stable_across_runs_and_versions() -> None:
    """SHA-256 of the name, not Python's hash(): pinned, so a CI matrix never reshuffles."""
    assert [k for k in range(1, 5) if Shard(k, 4).holds("0252012345-00001")] == [1]
    assert [k for k in range(1, 4) if Shard(k, 3).holds("TestAccount-2")] == [2]
    assert [k for k in range(1, 4) if Shard(k, 3).holds("fleet-1")] == [3]


def test_a_shard_combines_with_account_patterns() -> None:
    desired = state((*FLEET, "lab-1", "lab-2"))
    target = select(desired, ["0252*"], Shard(2, 3))
    assert target.accounts == tuple(a for a in FLEET if Shard(2, 3).holds(a))
    assert target.targeted and target.shard == Shard(2, 3)
    assert target.note() == (
        f"targeted run: --account '0252*' --shard 2/3 select {len(target.accounts)} accounts; "
        "the configuration's other accounts were neither read nor planned."
    )
    with pytest.raises(UsageError, match="--account 'x-\\*' matches no account"):
        select(desired, ["x-*"], Shard(1, 2))


def test_an_empty_shard_selects_nothing_and_says_so() -> None:
    target = select(state(("0252012345-00001",)), [], Shard(2, 4))
    assert target.accounts == () and target.targeted
    assert target.note() is not None and "--shard 2/4 selects 0 accounts" in target.note()


# -- over the command line ---------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(credentials=Credentials.for_simulator({}))) as simulator:
        yield simulator


def fleet_config(path: Path, names: tuple[str, ...]) -> Path:
    lines = ["version: 1", "accounts:"]
    for name in names:
        lines += [f'  "{name}":', "    callbacks:", "      DeviceUsage:"]
        lines.append(f"        url: https://hooks.example.com/{name}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("value", ["0/3", "4/3", "three", "1/3/3"])
def test_a_bad_shard_is_refused_before_anything_is_sent(
    sim: Simulator, tmp_path: Path, value: str
) -> None:
    config = fleet_config(tmp_path / "c.yaml", FLEET[:3])
    for command in (("plan",), ("apply", "--auto-approve")):
        result = run(*command, "-c", str(config), "--shard", value, env=base_env(sim.base_url))
        assert result.code == 1, result.output
        assert result.stderr.startswith("Error: ")
        assert "argument --shard: takes K/N, two whole numbers with 1 <= K <= N" in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sim.requests() == []


def test_n_jobs_split_a_fleet_and_together_apply_all_of_it(sim: Simulator, tmp_path: Path) -> None:
    names = FLEET[:12]
    config = fleet_config(tmp_path / "c.yaml", names)
    env = base_env(sim.base_url)
    seen: list[str] = []
    for k in (1, 2, 3):
        sim.clear_requests()
        result = run("apply", "-c", str(config), "--auto-approve", "--shard", f"{k}/3", env=env)
        assert result.code == 0, result.output
        mine = {a for a in names if Shard(k, 3).holds(a)}
        assert {r.account for r in sim.requests() if r.account} == mine
        assert f"--shard {k}/3 selects {len(mine)} account" in result.stdout
        seen += mine
    assert sorted(seen) == sorted(names)  # each account in exactly one job
    final = run("plan", "-c", str(config), "--detailed-exitcode", env=env)
    assert final.code == 0, final.output  # the three jobs together converged the fleet


def test_a_saved_plan_records_its_shard_and_refuses_another(sim: Simulator, tmp_path: Path) -> None:
    config = fleet_config(tmp_path / "c.yaml", FLEET[:12])
    env = base_env(sim.base_url)
    out = tmp_path / "shard.plan"
    made = run("plan", "-c", str(config), "--shard", "2/3", "--out", str(out), env=env)
    assert made.code == 0, made.output
    recorded = json.loads(out.read_text())["target"]
    assert recorded["shard"] == "2/3" and recorded["patterns"] == []
    assert recorded["accounts"] == [a for a in FLEET[:12] if Shard(2, 3).holds(a)]
    sim.clear_requests()
    for other in ("1/3", "2/4"):
        refused = run("apply", str(out), "--shard", other, env=env)
        assert refused.code == 1, refused.output
        assert (
            f"the plan was made with --shard 2/3; apply PLANFILE cannot apply it as shard {other}"
            in refused.stderr
        )
    assert sim.requests() == []
    same = run("apply", str(out), "--shard", "2/3", env=env)
    assert same.code == 0, same.output
    assert {r.account for r in sim.requests() if r.account} == set(recorded["accounts"])


def test_a_plan_made_without_a_shard_cannot_be_applied_as_one(
    tmp_path: Path, sim: Simulator
) -> None:
    config = fleet_config(tmp_path / "c.yaml", FLEET[:4])
    out = tmp_path / "all.plan"
    env = base_env(sim.base_url)
    assert run("plan", "-c", str(config), "--out", str(out), env=env).code == 0
    saved = read_saved_plan(str(out))
    with pytest.raises(PlanFileError, match="the plan was made without --shard"):
        check_accounts(saved, state(FLEET[:4]), [], path=str(out), shard=Shard(1, 2))


@pytest.mark.parametrize(
    "target",
    [
        {"patterns": [], "accounts": []},  # neither patterns nor a shard
        {"patterns": [], "accounts": [], "shard": "0/2"},
        {"patterns": [], "accounts": [], "shard": 2},
        {"patterns": ["a"], "accounts": [], "other": 1},
    ],
)
def test_a_saved_plan_with_an_edited_target_is_refused(
    tmp_path: Path, sim: Simulator, target: dict[str, object]
) -> None:
    config = fleet_config(tmp_path / "c.yaml", FLEET[:2])
    out = tmp_path / "p.plan"
    assert run("plan", "-c", str(config), "--out", str(out), env=base_env(sim.base_url)).code == 0
    doc = json.loads(out.read_text())
    doc["target"] = target
    out.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match="incomplete or was edited"):
        read_saved_plan(str(out))
