"""End to end, family by family: the real ``tscallbacks`` against the simulator over HTTP.

For each of the seven callback families: plan from empty -> apply -> plan converged; then
drift made behind tscallbacks' back with raw HTTP calls (a changed URL, an undeclared
registration, a deleted registration) is shown exactly and applied with exactly the
writes it needs, as the simulator's request log records them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.credentials import Credentials
from tests.e2e_support import EXAMPLES, DirectApi, Result, base_env, run

pytestmark = pytest.mark.e2e

ACCOUNT = "0252012345-00007"
URL = "https://hooks.example.com/thingspace/{}"
OTHER = "https://elsewhere.example.com/changed"
HEADER_SECRET = "diag-header-secret-4b1e9"


@dataclass(frozen=True)
class Case:
    """One family as the test drives it: the name tscallbacks plans it under, the service
    declared, the simulator's paths, and raw calls that change it behind our back."""

    family: str
    service: str
    collection: str  # where register (and list) go, without a query
    update_method: str  # how tscallbacks changes a URL: a re-POST or a PUT
    delete_path: str  # the DELETE's path (query not logged)
    register: Callable[[DirectApi, str, str], Any]  # (api, service, url)
    deregister: Callable[[DirectApi, str], Any]  # (api, service)
    other: str | None = None  # a second service of the family, for an undeclared one


def _post(api: DirectApi, path: str, body: dict[str, Any], **params: str) -> None:
    r = api.http.post(api.base + path, json=body, params=params, timeout=10)
    assert r.status_code == 200, r.text


def _delete(api: DirectApi, path: str, **params: str) -> None:
    r = api.http.delete(api.base + path, params=params, timeout=10)
    assert r.status_code == 200, r.text


def _path_family(base: str, named: bool = True) -> dict[str, Any]:
    """Register and deregister for a family with the account (and service) in the path."""
    collection = f"{base}/{ACCOUNT}"

    def register(api: DirectApi, service: str, url: str) -> None:
        _post(api, collection, {"name": service, "url": url} if named else {"url": url})

    def deregister(api: DirectApi, service: str) -> None:
        _delete(api, f"{collection}/name/{service}" if named else collection)

    return {
        "collection": collection,
        "register": register,
        "deregister": deregister,
    }


def _diagnostics() -> dict[str, Any]:
    base = "/api/diagnostics/v1/callbacks"

    def register(api: DirectApi, service: str, url: str) -> None:
        _post(api, base, {"accountName": ACCOUNT, "serviceName": service, "endpoint": url})

    def deregister(api: DirectApi, service: str) -> None:
        _delete(api, base, accountName=ACCOUNT, serviceName=service)

    return {"collection": base, "register": register, "deregister": deregister}


def _hpl() -> dict[str, Any]:
    base = "/api/hyper-precise/v1/callbacks"

    def register(api: DirectApi, service: str, url: str) -> None:
        _post(api, base, {"name": service.removeprefix("HPL:"), "url": url}, accountNumber=ACCOUNT)

    def deregister(api: DirectApi, service: str) -> None:
        _delete(api, base, accountNumber=ACCOUNT, service=service.removeprefix("HPL:"))

    return {"collection": base, "register": register, "deregister": deregister}


def _case(family: str, service: str, update: str, other: str | None, **calls: Any) -> Case:
    named = calls.pop("delete_named", True)
    delete_path = calls["collection"] + (f"/name/{service}" if named else "")
    return Case(
        family, service, update_method=update, delete_path=delete_path, other=other, **calls
    )


CASES = [
    _case("m2m", "DeviceUsage", "POST", "CarrierService", **_path_family("/api/m2m/v1/callbacks")),
    _case("fota", "Fota", "POST", None, **_path_family("/api/fota/v1/callbacks")),
    _case(
        "location", "Location", "POST", "DeviceLocation", **_path_family("/api/loc/v1/callbacks")
    ),
    _case("diagnostics", "Diagnostics", "POST", None, delete_named=False, **_diagnostics()),
    _case("hpl", "HPL:BullseyeReporting", "POST", "HPL:FleetTracker", delete_named=False, **_hpl()),
    _case(
        "fota-v2",
        "FotaV2",
        "PUT",
        None,
        delete_named=False,
        **_path_family("/api/fota/v2/callbacks", named=False),
    ),
    _case(
        "fota-v3",
        "FotaV3",
        "PUT",
        None,
        delete_named=False,
        **_path_family("/api/fota/v3/callbacks", named=False),
    ),
]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


def _config(tmp_path: Path, case: Case, *, declared: bool = True) -> Path:
    """The account manages ``case``'s family only, and declares its service (or nothing)."""
    callbacks = {case.service: {"url": URL.format(case.family)}} if declared else {}
    doc = {"version": 1, "accounts": {ACCOUNT: {"manage": [case.family], "callbacks": callbacks}}}
    path = tmp_path / f"{case.family}-{'declared' if declared else 'empty'}.yaml"
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def _env(sim: Simulator) -> dict[str, str]:
    return base_env(sim.base_url, DIAG_HOOK_TOKEN=HEADER_SECRET)


def _plan(sim: Simulator, config: Path) -> Result:
    return run("plan", "-c", str(config), "--detailed-exitcode", env=_env(sim))


def _apply(sim: Simulator, config: Path) -> Result:
    """Every apply of this file goes through here (one place to add options to it)."""
    return run(
        "apply", "-c", str(config), "--auto-approve", "--secrets-dir", "secrets", env=_env(sim)
    )


def _writes(sim: Simulator) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in sim.requests()
        if r.method in ("POST", "PUT", "DELETE") and "/callbacks" in r.path
    ]


def _applied(sim: Simulator, config: Path) -> list[tuple[str, str]]:
    sim.clear_requests()
    result = _apply(sim, config)
    assert result.code == 0, result.output
    writes = _writes(sim)
    converged = _plan(sim, config)
    assert converged.code == 0, converged.output
    assert "No changes." in converged.stdout
    return writes


def _shown(result: Result) -> list[str]:
    """The plan's change lines (without the header, the blank lines and the summary)."""
    assert result.code == 2, result.output
    return [line.strip() for line in result.stdout.splitlines() if line.startswith("  ")]


@pytest.mark.parametrize("case", CASES, ids=[c.family for c in CASES])
def test_a_family_from_empty_to_converged_and_back_from_drift(
    sim: Simulator, tmp_path: Path, case: Case
) -> None:
    config = _config(tmp_path, case)
    wanted = URL.format(case.family)
    head = f"{ACCOUNT}/{case.service} ({case.family})"

    # From empty: one create, one POST.
    sim.clear_requests()
    planned = _plan(sim, config)
    assert _shown(planned) == [f"+ create {head}", f'+ url = "{wanted}"']
    assert planned.stdout.startswith(f"Reading {case.family} for account {ACCOUNT}.\n\n")
    assert "Plan: 1 to create, 0 to update, 0 to delete." in planned.stdout
    reads = {(r.method, r.path) for r in sim.requests() if r.method == "GET"}
    assert reads == {("GET", case.collection)}  # only the managed family is read
    assert _applied(sim, config) == [("POST", case.collection)]

    api = DirectApi(sim.base_url)
    # A changed URL: one update, with the family's own update call.
    case.register(api, case.service, OTHER)
    assert _shown(_plan(sim, config)) == [f"~ update {head}", f'~ url = "{OTHER}" -> "{wanted}"']
    assert _applied(sim, config) == [(case.update_method, case.collection)]

    # A deleted registration: created again.
    case.deregister(api, case.service)
    assert _shown(_plan(sim, config)) == [f"+ create {head}", f'+ url = "{wanted}"']
    assert _applied(sim, config) == [("POST", case.collection)]

    # An undeclared registration, in a family the account manages: pruned.
    if case.other is not None:  # a second service beside the declared one
        case.register(api, case.other, OTHER)
        other = f"{ACCOUNT}/{case.other} ({case.family})"
        assert _shown(_plan(sim, config)) == [
            f"- destroy {other}",
            f'- url = "{OTHER}"',
            "# why: not declared; prune is on for this account",
        ]
        other_delete = case.delete_path.replace(case.service, case.other)
        assert _applied(sim, config) == [("DELETE", other_delete)]
    empty = _config(tmp_path, case, declared=False)  # the declared one, undeclared now
    assert _shown(_plan(sim, empty)) == [
        f"- destroy {head}",
        f'- url = "{wanted}"',
        "# why: not declared; prune is on for this account",
    ]
    assert _applied(sim, empty) == [("DELETE", case.delete_path)]


def test_a_family_the_account_does_not_manage_is_neither_read_nor_pruned(
    sim: Simulator, tmp_path: Path
) -> None:
    api = DirectApi(sim.base_url)
    hpl = CASES[4]
    hpl.register(api, hpl.service, OTHER)
    config = tmp_path / "c.yaml"
    config.write_text(
        f'version: 1\naccounts:\n  "{ACCOUNT}":\n    callbacks:\n'
        f"      DeviceUsage: {{url: '{URL.format('u')}'}}\n"
    )
    sim.clear_requests()
    result = _plan(sim, config)
    assert _shown(result) == [
        f"+ create {ACCOUNT}/DeviceUsage (m2m)",
        f'+ url = "{URL.format("u")}"',
    ]
    assert not result.stdout.startswith("Reading")  # a version-1 file: the header of old
    reads = sorted(r.path for r in sim.requests() if r.method == "GET")
    assert reads == [f"/api/fota/v1/callbacks/{ACCOUNT}", f"/api/m2m/v1/callbacks/{ACCOUNT}"]


def test_the_example_declares_every_family_and_converges(sim: Simulator) -> None:
    planned = _plan(sim, EXAMPLES)
    assert planned.code == 2, planned.output
    heads = [line for line in _shown(planned) if line.startswith("+ create ")]
    families = {line.rsplit("(", 1)[1].rstrip(")") for line in heads}
    assert families == {c.family for c in CASES}
    assert "Plan: 16 to create, 0 to update, 0 to delete." in planned.stdout
    assert planned.stdout.startswith(
        "Reading m2m, fota for 2 accounts.\n"
        "Reading m2m for account TestAccount-2.\n"
        "Reading m2m, fota, location, diagnostics, hpl, fota-v2, fota-v3 for account "
        "0252012345-00003.\n\n"
    )
    assert _applied(sim, EXAMPLES) and _plan(sim, EXAMPLES).code == 0


def _diagnostics_config(tmp_path: Path) -> Path:
    config = tmp_path / "diag.yaml"
    config.write_text(
        f'version: 1\naccounts:\n  "{ACCOUNT}":\n    callbacks:\n      Diagnostics:\n'
        f"        url: {URL.format('diag')}\n"
        "        httpHeaders:\n          X-Listener-Token: ${env:DIAG_HOOK_TOKEN}\n"
    )
    return config


def test_diagnostics_headers_are_sent_compared_and_never_shown(
    sim: Simulator, tmp_path: Path
) -> None:
    config = _diagnostics_config(tmp_path)
    env = _env(sim)
    planned = run("plan", "-c", str(config), "--output", "json", env=env)
    assert planned.code == 0, planned.output
    [change] = json.loads(planned.stdout)["changes"]
    assert change["after"]["httpHeaders"] == {"X-Listener-Token": "(sensitive)"}
    applied = _apply(sim, config)
    assert applied.code == 0, applied.output
    [listed] = (
        DirectApi(sim.base_url)
        .http.get(
            f"{sim.base_url}/api/diagnostics/v1/callbacks",
            params={"accountName": ACCOUNT},
            timeout=10,
        )
        .json()
    )
    assert listed["httpHeaders"] == {"X-Listener-Token": HEADER_SECRET}  # sent as declared
    assert run("plan", "-c", str(config), "--detailed-exitcode", env=env).code == 0

    # Another value: an update of a sensitive field, its value never shown.
    rotated = base_env(sim.base_url, DIAG_HOOK_TOKEN="diag-header-secret-rotated")
    again = run("plan", "-c", str(config), "--detailed-exitcode", env=rotated)
    assert _shown(again) == [
        f"~ update {ACCOUNT}/Diagnostics (diagnostics)",
        "~ httpHeaders = X-Listener-Token=(sensitive) -> X-Listener-Token=(sensitive)",
    ]
    saved = tmp_path / "diag.plan"
    assert run("plan", "-c", str(config), "--out", str(saved), env=rotated).code == 0
    exported = run("export", "--account", ACCOUNT, env=rotated)
    assert exported.code == 0, exported.output
    assert "X-Listener-Token: ${env:TSC_0252012345_00007_DIAGNOSTICS_X_LISTENER_TOKEN}" in (
        exported.stdout
    )
    for text in (planned.output, applied.output, again.output, exported.output):
        assert HEADER_SECRET not in text
    assert HEADER_SECRET not in saved.read_text()
    journal = (tmp_path / ".tscallbacks" / "journal.jsonl").read_text()
    assert '"httpHeaders": ["X-Listener-Token"]' in journal  # names only
    assert HEADER_SECRET not in journal


@pytest.mark.parametrize("status", [403, 401])
def test_a_family_the_account_is_not_entitled_to_is_one_line(
    sim: Simulator, tmp_path: Path, status: int
) -> None:
    sim.set_faults(FaultSettings(refuse_families={f"{ACCOUNT}:/api/loc/v1": status}))
    config = _config(tmp_path, CASES[2])
    result = _plan(sim, config)
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f'Error: account "{ACCOUNT}" is not entitled to Device Location (HTTP {status} on GET '
        f'/api/loc/v1/callbacks/{ACCOUNT}); remove "location" from its manage: list (and '
        "its Device Location services) or ask Verizon to enable it\n"
    )
    assert not _writes(sim)


def test_an_expired_session_is_renewed_and_reading_goes_on(sim: Simulator) -> None:
    """A 401 is an expired session first: renewed once, the listing is read; only a 401
    that a new login does not cure is a missing entitlement."""
    from reconciler.core import families
    from reconciler.core.errors import NotEntitledError
    from reconciler.engine.observe import read_current
    from reconciler.thingspace.client import ThingSpaceClient

    CASES[2].register(DirectApi(sim.base_url), "Location", OTHER)
    wanted = {ACCOUNT: frozenset({families.LOCATION})}
    with ThingSpaceClient(sim.base_url, Credentials.for_simulator({})) as client:
        assert (
            read_current(client, wanted, parallelism=1).accounts[ACCOUNT]["Location"].url == OTHER
        )
        sim.expire_sessions()
        again = read_current(client, wanted, parallelism=1)
        assert again.accounts[ACCOUNT]["Location"].url == OTHER
        assert client.stats().relogins == 1
        sim.set_faults(FaultSettings(refuse_families={f"{ACCOUNT}:/api/loc/v1": 401}))
        with pytest.raises(NotEntitledError) as refused:
            read_current(client, wanted, parallelism=1)
    assert (refused.value.account, refused.value.family) == (ACCOUNT, "location")


def test_export_leaves_out_a_family_the_account_is_not_entitled_to(sim: Simulator) -> None:
    api = DirectApi(sim.base_url)
    CASES[0].register(api, "DeviceUsage", URL.format("u"))
    CASES[4].register(api, "HPL:BullseyeReporting", URL.format("h"))
    CASES[2].register(api, "Location", URL.format("l"))
    sim.set_faults(FaultSettings(refuse_families={f"{ACCOUNT}:/api/loc/v1": 403}))
    result = run("export", "--account", ACCOUNT, env=_env(sim))
    assert result.code == 0, result.output
    assert "DeviceUsage:" in result.stdout and "HPL:BullseyeReporting:" in result.stdout
    assert "Location:" not in result.stdout
    assert result.stderr == (
        f'Note: account "{ACCOUNT}" is not entitled to Device Location (HTTP 403 on GET '
        f"/api/loc/v1/callbacks/{ACCOUNT}): nothing of it is exported\n"
    )
    # Refused for a default family: no such account, as before.
    sim.set_faults(FaultSettings(refuse_families={f"{ACCOUNT}:/api/m2m/v1": 403}))
    refused = run("export", "--account", ACCOUNT, env=_env(sim))
    assert refused.code == 1 and refused.stdout == ""
    assert refused.stderr.startswith(
        f"Error: account '{ACCOUNT}' was not found, or these credentials cannot read it"
    )
