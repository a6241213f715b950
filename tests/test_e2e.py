"""End to end: the installed ``tscallbacks`` command against the simulator over real HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.simulator import FaultSettings, Simulator, SimulatorConfig
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS, Credentials
from tests.e2e_support import COMMAND, EXAMPLE, SMS_SECRET, DirectApi, base_env, run

pytestmark = pytest.mark.e2e

A1, A2, SANDBOX = "0252012345-00001", "0252012345-00002", "TestAccount-2"
EXAMPLE_WRITES = 10  # registrations declared in examples/callbacks.yaml


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


def writes(sim: Simulator) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in sim.requests()
        if r.method in ("POST", "DELETE") and "/callbacks/" in r.path
    ]


def plan_json(sim: Simulator, config: Path = EXAMPLE) -> dict:  # type: ignore[type-arg]
    result = run("plan", "-c", str(config), "--output", "json", env=base_env(sim.base_url))
    assert result.code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def changes(doc: dict) -> set[tuple[str, str, str]]:  # type: ignore[type-arg]
    return {(c["action"], c["account"], c["service"]) for c in doc["changes"]}


def test_plan_on_empty_state_reads_only(sim: Simulator) -> None:
    result = run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=base_env(sim.base_url))
    assert result.code == 2, result.output
    assert "Plan: 10 to create, 0 to update, 0 to delete." in result.stdout
    assert f"+ create {A1}/Fota (fota)" in result.stdout
    methods = {(r.method, r.path.split("/")[2]) for r in sim.requests()}
    # Only GETs on the callback APIs; POSTs only to authenticate.
    assert all(m == "GET" or p in ("ts", "m2m") for m, p in methods)
    assert not writes(sim)


def test_apply_then_converged(sim: Simulator) -> None:
    env = base_env(sim.base_url)
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env)
    assert result.code == 0, result.output
    assert "Apply complete! Changes made: 10 created, 0 updated, 0 deleted." in result.stdout
    posted = writes(sim)
    assert len(posted) == EXAMPLE_WRITES and all(m == "POST" for m, _ in posted)
    assert ("POST", f"/api/fota/v1/callbacks/{A1}") in posted  # Fota goes to the FOTA family
    assert ("POST", f"/api/m2m/v1/callbacks/{A1}") in posted

    fota = DirectApi(sim.base_url).list(A1, "fota")
    assert fota == [
        {"aname": A1, "name": "Fota", "url": "https://hooks.acme-iot.example.com/thingspace/fota"}
    ]

    again = run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=env)
    assert again.code == 0, again.output
    assert "No changes." in again.stdout

    sim.clear_requests()
    second = run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env)
    assert second.code == 0 and "No changes." in second.stdout
    assert writes(sim) == []  # idempotent: no write calls at all


def test_drift_is_shown_exactly(sim: Simulator) -> None:
    env = base_env(sim.base_url)
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    api = DirectApi(sim.base_url)
    api.register(A1, "DeviceUsage", "https://elsewhere.example.net/usage")  # changed URL
    api.register(A2, "CarrierService", "https://elsewhere.example.net/carrier")  # undeclared
    api.deregister(A2, "Fota")  # declared, removed behind our back
    api.register(SANDBOX, "PromoChanges", "https://elsewhere.example.net/promo")  # prune: false

    doc = plan_json(sim)
    assert changes(doc) == {
        ("update", A1, "DeviceUsage"),
        ("delete", A2, "CarrierService"),
        ("create", A2, "Fota"),
    }
    update = next(c for c in doc["changes"] if c["action"] == "update")
    assert update["changed_fields"] == ["url"]
    assert update["before"]["url"] == "https://elsewhere.example.net/usage"
    assert any("prune is false" in n and "PromoChanges" in n for n in doc["notes"])

    sim.clear_requests()
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    assert sorted(writes(sim)) == sorted(
        [
            ("POST", f"/api/m2m/v1/callbacks/{A1}"),
            ("DELETE", f"/api/m2m/v1/callbacks/{A2}/name/CarrierService"),
            ("POST", f"/api/fota/v1/callbacks/{A2}"),
        ]
    )
    # prune: false left the sandbox's extra registration alone
    assert any(i["serviceName"] == "PromoChanges" for i in api.list(SANDBOX))
    assert run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=env).code == 0


def test_undeclared_accounts_are_never_requested(sim: Simulator) -> None:
    DirectApi(sim.base_url).register("9999999999-00001", "DeviceUsage", "https://x.example.com/a")
    sim.clear_requests()
    env = base_env(sim.base_url)
    assert run("plan", "-c", str(EXAMPLE), env=env).code == 0
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    touched = {r.account for r in sim.requests() if r.account}
    assert touched == {A1, A2, SANDBOX}
    assert all("9999999999" not in r.path for r in sim.requests())


def test_prune_false_reads_only_declared_families(sim: Simulator) -> None:
    sim.clear_requests()
    assert run("plan", "-c", str(EXAMPLE), env=base_env(sim.base_url)).code == 0
    sandbox_paths = {r.path for r in sim.requests() if r.account == SANDBOX}
    assert sandbox_paths == {f"/api/m2m/v1/callbacks/{SANDBOX}"}


def test_secrets_never_in_output(sim: Simulator, tmp_path: Path) -> None:
    env = base_env(sim.base_url)
    secrets = [
        SMS_SECRET,
        SIMULATOR_DEFAULTS["THINGSPACE_CLIENT_SECRET"],
        SIMULATOR_DEFAULTS["THINGSPACE_PASSWORD"],
    ]
    outputs = [
        run("validate", "-c", str(EXAMPLE), env=env),
        run("plan", "-c", str(EXAMPLE), env=env),
        run("plan", "-c", str(EXAMPLE), "--output", "json", env=env),
        run("plan", "-c", str(EXAMPLE), "--output", "markdown", env=env),
        run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env),
    ]
    # change the password so the plan shows a sensitive update
    changed = run("plan", "-c", str(EXAMPLE), env={**env, "SMS_HOOK_PASSWORD": "another-secret-2"})
    outputs.append(changed)
    assert "~ password = (sensitive) -> (sensitive)" in changed.stdout
    outputs.append(run("export", "--account", A1, env=env))
    outputs.append(
        run("plan", "-c", str(EXAMPLE), env={**env, "THINGSPACE_PASSWORD": "wrong-pass-x"})
    )
    for result in outputs:
        for secret in [*secrets, "another-secret-2", "wrong-pass-x"]:
            assert secret not in result.output, (secret, result.output)
    assert outputs[-1].code == 1


def test_apply_without_terminal_refuses(sim: Simulator) -> None:
    result = run("apply", "-c", str(EXAMPLE), env=base_env(sim.base_url))
    assert result.code == 1
    assert "--auto-approve" in result.stderr
    assert writes(sim) == []


def test_apply_survives_rate_limits_and_server_errors(sim: Simulator) -> None:
    sim.set_faults(
        FaultSettings.from_dict({"rate_limit_next": 2, "retry_after": 0, "server_error_next": 2})
    )
    env = base_env(sim.base_url)
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env)
    assert result.code == 0, result.output
    assert run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=env).code == 0


def test_partial_failure_reports_and_then_converges(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"fail_writes": {A2: 400}}))
    env = base_env(sim.base_url)
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env)
    assert result.code == 1
    assert "apply failed: 3 of 10 changes failed" in result.stderr
    assert f"{A2}/DeviceUsage" in result.stderr
    assert f"{A1}/DeviceUsage: created" in result.stdout
    sim.set_faults(FaultSettings())
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    assert run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=env).code == 0


def test_embedded_simulator_converges_across_processes(tmp_path: Path) -> None:
    env = base_env()
    env.pop("THINGSPACE_ENDPOINT", None)
    for name in SIMULATOR_DEFAULTS:
        env.pop(name)
    first = run("apply", "--simulator", "--auto-approve", "-c", str(EXAMPLE), env=env, cwd=tmp_path)
    assert first.code == 0, first.output
    assert (tmp_path / ".tscallbacks" / "simulator.json").is_file()
    second = run(
        "plan", "--simulator", "--detailed-exitcode", "-c", str(EXAMPLE), env=env, cwd=tmp_path
    )
    assert second.code == 0, second.output
    assert "No changes." in second.stdout


def test_export_round_trips_to_no_changes(sim: Simulator, tmp_path: Path) -> None:
    env = base_env(sim.base_url)
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    exported = tmp_path / "exported.yaml"
    result = run("export", "--account", A1, "--account", A2, "-o", str(exported), env=env)
    assert result.code == 0, result.output
    text = exported.read_text()
    assert SMS_SECRET not in text and SMS_SECRET not in result.output
    assert '"0252012345-00001":' in text
    # the password is exported as a reference, and the note names the variable
    assert "TSC_0252012345_00001_SMSDELIVERYCONFIRMATION_PASSWORD" in result.stderr
    plan_env = {**env, "TSC_0252012345_00001_SMSDELIVERYCONFIRMATION_PASSWORD": SMS_SECRET}
    again = run("plan", "-c", str(exported), "--detailed-exitcode", env=plan_env)
    assert again.code == 0, again.output
    # only the exported accounts were read
    assert all(r.account in (A1, A2, None) for r in sim.requests()[-6:])


def test_export_refuses_bad_input(sim: Simulator, tmp_path: Path) -> None:
    env = base_env(sim.base_url)
    bad = run("export", "--account", "not an account", env=env)
    assert bad.code == 1 and "invalid account name" in bad.stderr
    unwritable = run("export", "--account", A1, "-o", str(tmp_path / "no" / "x.yaml"), env=env)
    assert unwritable.code == 1
    assert (
        unwritable.stderr.startswith("Error: cannot write")
        and "internal error" not in unwritable.stderr
    )


def logins(sim: Simulator) -> int:
    return sum(1 for r in sim.requests() if r.path == "/api/m2m/v1/session/login")


def test_apply_survives_sessions_expiring_mid_run(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"latency_ms": 150}))
    env = base_env(sim.base_url)
    expired = threading.Event()

    def expire_after_first_write() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not writes(sim):
            time.sleep(0.02)
        sim.expire_sessions()
        expired.set()

    watcher = threading.Thread(target=expire_after_first_write)
    watcher.start()
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", "--parallelism", "1", env=env)
    watcher.join()
    assert expired.is_set()
    assert result.code == 0, result.output
    assert logins(sim) == 2  # one login, one re-login after the 401; never more
    sim.set_faults(FaultSettings())
    assert run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=env).code == 0


def test_plan_survives_dropped_connections(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"drop_next": 2}))
    result = run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=base_env(sim.base_url))
    assert result.code == 2, result.output
    assert any(r.status is None for r in sim.requests())  # the drops really happened


def test_refused_login_is_not_retried(sim: Simulator) -> None:
    env = base_env(sim.base_url, THINGSPACE_PASSWORD="not-the-password")
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env)
    assert result.code == 1
    assert "session/login" in result.stderr and "not-the-password" not in result.output
    assert logins(sim) == 1  # five refused logins would lock the user: we tried once
    assert not writes(sim)


def test_adding_a_password_is_drift(sim: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    body = "version: 1\naccounts:\n  A-1:\n    callbacks:\n      DeviceUsage:\n"
    body += "        url: https://hooks.example.com/u\n"
    config.write_text(body)
    env = base_env(sim.base_url)
    assert run("apply", "-c", str(config), "--auto-approve", env=env).code == 0
    config.write_text(body + "        password: ${env:SMS_HOOK_PASSWORD}\n")
    result = run("plan", "-c", str(config), "--detailed-exitcode", env=env)
    assert result.code == 2, result.output
    assert "~ password = (none) -> (sensitive)" in result.stdout
    assert "cannot be checked" not in result.stdout
    assert run("apply", "-c", str(config), "--auto-approve", env=env).code == 0
    assert run("plan", "-c", str(config), "--detailed-exitcode", env=env).code == 0


def test_saved_plan_applies_exactly_and_refuses_when_stale(sim: Simulator, tmp_path: Path) -> None:
    env = base_env(sim.base_url)
    planfile = tmp_path / "tfplan.json"
    made = run("plan", "-c", str(EXAMPLE), "--out", str(planfile), env=env)
    assert made.code == 0, made.output
    assert SMS_SECRET not in planfile.read_text()

    # Someone changes remote state between plan and apply: refused, nothing written.
    DirectApi(sim.base_url).register(A1, "PromoChanges", "https://elsewhere.example.net/p")
    sim.clear_requests()
    stale = run("apply", "--auto-approve", str(planfile), env=env)
    assert stale.code == 1
    assert "stale" in stale.stderr and "remote state changed" in stale.stderr
    assert writes(sim) == []

    # A fresh plan applies; the config path comes from the plan file itself.
    assert run("plan", "-c", str(EXAMPLE), "--out", str(planfile), env=env).code == 0
    sim.clear_requests()
    applied = run("apply", "--auto-approve", str(planfile), env=env)
    assert applied.code == 0, applied.output
    assert len(writes(sim)) == EXAMPLE_WRITES + 1  # ten creates and the PromoChanges delete
    # Applying the same plan twice is refused: it describes a state that is gone.
    again = run("apply", "--auto-approve", str(planfile), env=env)
    assert again.code == 1 and "stale" in again.stderr
    assert run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=env).code == 0


def test_saved_plan_refuses_a_changed_configuration(sim: Simulator, tmp_path: Path) -> None:
    env = base_env(sim.base_url)
    config = tmp_path / "c.yaml"
    config.write_text(EXAMPLE.read_text())
    planfile = tmp_path / "plan.json"
    assert run("plan", "-c", str(config), "--out", str(planfile), env=env).code == 0
    config.write_text(EXAMPLE.read_text().replace("/thingspace/qos", "/thingspace/qos2"))
    result = run("apply", "--auto-approve", str(planfile), env=env)
    assert result.code == 1 and "changes needed now differ" in result.stderr
    assert writes(sim) == []


def test_saved_plan_with_embedded_simulator(tmp_path: Path) -> None:
    env = {k: v for k, v in base_env().items() if k not in SIMULATOR_DEFAULTS}
    planfile = tmp_path / "plan.json"
    made = run(
        "plan", "--simulator", "-c", str(EXAMPLE), "--out", str(planfile), env=env, cwd=tmp_path
    )
    assert made.code == 0, made.output
    applied = run("apply", "--simulator", "--auto-approve", str(planfile), env=env, cwd=tmp_path)
    assert applied.code == 0, applied.output
    # the same plan against a real endpoint is refused before anything is sent
    other = run("apply", "--auto-approve", str(planfile), env=base_env("http://127.0.0.1:9"))
    assert other.code == 1 and "was made against embedded-simulator" in other.stderr


def test_sigterm_mid_apply_stops_cleanly_and_rerun_converges(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"latency_ms": 200}))
    env = base_env(sim.base_url)
    proc = subprocess.Popen(
        [str(COMMAND), "apply", "-c", str(EXAMPLE), "--auto-approve", "--parallelism", "1"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not writes(sim):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "interrupted" in err and "Traceback" not in err
    done = len(writes(sim))
    assert 1 <= done < EXAMPLE_WRITES  # it stopped early, after what was on the wire
    assert out.count(": created") == done  # and said what it did
    sim.set_faults(FaultSettings())
    assert run("apply", "-c", str(EXAMPLE), "--auto-approve", env=env).code == 0
    assert run("plan", "-c", str(EXAMPLE), "--detailed-exitcode", env=env).code == 0


def test_empty_username_and_password_mean_none_and_converge(sim: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "version: 1\naccounts:\n  A-1:\n    callbacks:\n"
        '      DeviceUsage: {url: "https://hooks.example.com/a", username: ""}\n'
        '      CarrierService: {url: "https://hooks.example.com/b", password: ""}\n'
    )
    env = base_env(sim.base_url)
    assert run("apply", "-c", str(config), "--auto-approve", env=env).code == 0
    assert run("plan", "-c", str(config), "--detailed-exitcode", env=env).code == 0


def test_plan_out_refuses_to_overwrite_its_configuration(sim: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(EXAMPLE.read_text())
    result = run("plan", "-c", str(config), "--out", str(config), env=base_env(sim.base_url))
    assert result.code == 1 and "is a configuration file this plan reads" in result.stderr
    assert config.read_text() == EXAMPLE.read_text()
    assert sim.requests() == []


def test_saved_plan_names_a_missing_recorded_config(sim: Simulator, tmp_path: Path) -> None:
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "c.yaml").write_text(EXAMPLE.read_text())
    env = base_env(sim.base_url)
    planfile = tmp_path / "p.json"
    assert run("plan", "-c", "y/c.yaml", "--out", str(planfile), env=env, cwd=tmp_path).code == 0
    elsewhere = run("apply", "--auto-approve", str(planfile), env=env, cwd=tmp_path / "y")
    assert elsewhere.code == 1
    assert "the plan was made from y/c.yaml" in elsewhere.stderr and "-c PATH" in elsewhere.stderr
    with_c = run("apply", "--auto-approve", "-c", "c.yaml", str(planfile), env=env,
                 cwd=tmp_path / "y")  # fmt: skip
    assert with_c.code == 0, with_c.output


def test_partial_failure_errors_are_one_line_each(sim: Simulator) -> None:
    sim.set_faults(FaultSettings.from_dict({"fail_writes": {A2: 400}}))
    result = run("apply", "-c", str(EXAMPLE), "--auto-approve", env=base_env(sim.base_url))
    assert result.code == 1
    lines = result.stderr.splitlines()
    assert lines[-1] == "Error: apply failed: 3 of 10 changes failed"
    assert len(lines) == 4 and all(line.startswith("Error: ") for line in lines)


def test_bad_endpoint_variable_is_named(tmp_path: Path) -> None:
    result = run("plan", "-c", str(EXAMPLE), env=base_env("garbage"))
    assert result.code == 1 and "invalid THINGSPACE_ENDPOINT" in result.stderr
