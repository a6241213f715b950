"""Properties of plan/apply/export over arbitrary states, against one simulator over HTTP.

(b) plan -> apply -> plan: the second plan is empty, the simulator holds exactly what the
    configuration asks for (computed here, not by the planner), and apply wrote exactly
    the changes the first plan listed.
(c) export -> plan: a configuration exported from any remote state plans no changes.

Each example resets the simulator (admin reset), seeds the remote state by raw HTTP and
runs the CLI in-process. Derandomized: every run tries the same examples.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.core import catalog
from reconciler.core.families import DEFAULT_MANAGED, by_name
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import Credentials
from tests.reconcile_support import (
    ACCOUNTS,
    Declared,
    Desired,
    Reg,
    Remote,
    cli,
    config_text,
    expected_state,
    is_write,
    needed,
    reset,
    simulator_env,
    simulator_state,
    takes_credentials,
)

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# The version-1 families' services: the oracle here says prune covers every remote
# registration, which holds for the families an account reads by default (m2m, fota).
# The newer families, read through manage:, are tested in tests/test_e2e_families.py.
SERVICES = tuple(s for s in catalog.services() if catalog.family_of(s) in DEFAULT_MANAGED)

# -- strategies ----------------------------------------------------------------------------

_LABEL = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
# What a URL path may hold unencoded, and some %XX escapes.
_PATH_PIECES = st.sampled_from(list(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/"))
_PATH = st.lists(_PATH_PIECES | st.sampled_from(["%20", "%2F", "%c3%a9"]), max_size=12).map("".join)
# Text a configuration may hold: visible characters, non-ASCII included, and U+0020 (no
# control or format characters, separators or other spaces; "${" would read as an
# environment reference, so a literal username never holds it).
_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp", "Zs")) | st.just(" "),
    max_size=12,
)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https", "https", "http"]))
    host = ".".join([*draw(st.lists(_LABEL, min_size=1, max_size=3)), "example.com"])
    port = draw(st.sampled_from(["", "", ":443", ":9001", ":50551", ":28200"]))
    path = draw(_PATH)
    query = draw(st.sampled_from(["", "", "?a=1", "?x=%20y&z"]))
    return f"{scheme}://{host}{port}/{path}{query}"


@st.composite
def registrations(draw: st.DrawFn, service: str) -> Reg:
    username_ok, password_ok = takes_credentials(service)
    username = draw(st.none() | _TEXT.filter(lambda s: "${" not in s)) if username_ok else None
    password = draw(st.none() | _TEXT.filter(bool)) if password_ok else None
    return Reg(draw(urls()), username or None, password)


@st.composite
def service_maps(draw: st.DrawFn) -> dict[str, Reg]:
    chosen = draw(st.lists(st.sampled_from(SERVICES), max_size=4, unique=True))
    return {service: draw(registrations(service)) for service in chosen}


@st.composite
def remote_states(draw: st.DrawFn) -> Remote:
    chosen = draw(st.lists(st.sampled_from(ACCOUNTS), max_size=3, unique=True))
    return {account: draw(service_maps()) for account in chosen}


@st.composite
def desired_states(draw: st.DrawFn, remote: Remote) -> Desired:
    """Declarations that often overlap ``remote``: its services kept as they are, changed
    in one field or all, or left out."""
    chosen = draw(st.lists(st.sampled_from(ACCOUNTS), max_size=3, unique=True))
    desired: dict[str, Declared] = {}
    for account in chosen:
        have = remote.get(account, {})
        callbacks = dict(draw(service_maps()))
        for service, reg in have.items():
            other = draw(registrations(service))
            how = draw(st.sampled_from(["same", "new", "url", "username", "password", "absent"]))
            if how == "same":
                callbacks[service] = reg
            elif how == "new":
                callbacks[service] = other
            elif how == "url":
                callbacks[service] = replace(reg, url=other.url)
            elif how == "username":
                callbacks[service] = replace(reg, username=other.username)
            elif how == "password":
                callbacks[service] = replace(reg, password=other.password)
        desired[account] = Declared(prune=draw(st.booleans()), callbacks=callbacks)
    return desired


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Desired, Remote]:
    remote = draw(remote_states())
    return draw(desired_states(remote)), remote


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(credentials=Credentials.for_simulator({}))) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def changes_by_write(plan: dict[str, Any]) -> Counter[tuple[str, str]]:
    """(method, account) of the one request each planned change takes."""
    counted: Counter[tuple[str, str]] = Counter()
    for change in plan["changes"]:
        spec = by_name(change["family"])
        assert spec is not None
        method = {"create": "POST", "update": spec.update_method, "delete": "DELETE"}
        counted[(method[change["action"]], change["account"])] += 1
    return counted


# -- (b) plan -> apply -> plan ------------------------------------------------------------------


@PROPERTY
@given(scenario=scenarios())
def test_apply_then_plan_is_empty(
    scenario: tuple[Desired, Remote], sim: Simulator, workdir: Path
) -> None:
    desired, remote = scenario
    reset(sim, remote)
    text, passwords = config_text(desired)
    config = workdir / "callbacks.yaml"
    config.write_text(text, "utf-8")
    env = simulator_env(sim, **passwords)

    first = cli("plan", "-c", str(config), "--output", "json", env=env)
    assert first.code == 0, first.stderr
    plan = first.json()
    want = needed(desired, remote)
    assert len(plan["changes"]) == want.total, plan["changes"]

    sim.clear_requests()
    applied = cli("apply", "-c", str(config), "--auto-approve", env=env)
    assert applied.code == 0, applied.stdout + applied.stderr
    writes = Counter((r.method, r.account or "") for r in sim.requests() if is_write(r))
    assert writes == changes_by_write(plan)
    assert simulator_state(sim) == expected_state(desired, remote)

    second = cli("plan", "-c", str(config), "--output", "json", "--detailed-exitcode", env=env)
    assert second.code == 0, second.stdout + second.stderr
    assert second.json()["changes"] == []


# -- (c) export -> plan -----------------------------------------------------------------------


@PROPERTY
@given(
    remote=remote_states(),
    exported=st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=3, unique=True),
)
def test_export_then_plan_is_empty(
    remote: Remote, exported: list[str], sim: Simulator, workdir: Path
) -> None:
    reset(sim, remote)
    env = simulator_env(sim)
    config = workdir / "exported.yaml"
    argv = ["export", "-o", str(config)]
    for account in exported:
        argv += ["--account", account]
    result = cli(*argv, env=env)
    assert result.code == 0, result.stderr

    # The export names a variable for each password; set each to the remote value.
    document = yaml.safe_load(config.read_text("utf-8"))
    assert list(document["accounts"]) == exported
    passwords: dict[str, str] = {}
    for account, declared in document["accounts"].items():
        assert declared["prune"] is True
        for service, entry in declared["callbacks"].items():
            reference = entry.get("password")
            if reference is not None:
                name = reference.removeprefix("${env:").removesuffix("}")
                password = remote[account][service].password
                assert password is not None, (account, service)
                passwords[name] = password
    assert len(passwords) == sum(
        1 for a in exported for reg in remote.get(a, {}).values() if reg.password
    )

    sim.clear_requests()
    plan = cli(
        "plan", "-c", str(config), "--output", "json", "--detailed-exitcode",
        env={**env, **passwords},
    )  # fmt: skip
    assert plan.code == 0, plan.stdout + plan.stderr
    assert plan.json()["changes"] == []
    assert not [r for r in sim.requests() if is_write(r)]
