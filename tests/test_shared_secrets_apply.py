"""Shared secrets through the real ``tscallbacks`` commands (in this process, so the
simulator's secrets are known) against the simulator over real HTTP on 127.0.0.1.

The simulator answers Device Location and Diagnostics registrations with a shared
secret in ``X-Callback-Shared-Secret`` (the family table's ``shared_secret_header``).

Every secret the simulator issues is made known here (its generator is replaced), so
each test can look for every one of them in every output stream and every file written,
except the secret files themselves.
"""

from __future__ import annotations

import io
import itertools
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler import cli
from reconciler.core import families
from reconciler.engine.shared_secrets import SecretsDir
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.simulator import callbacks as sim_callbacks
from reconciler.thingspace.credentials import Credentials
from tests.e2e_support import base_env

pytestmark = pytest.mark.e2e

ACCOUNT = "0252012345-00001"
# The header the table names for Device Location (and the simulator sends).
HEADER = families.LOCATION.shared_secret_header
HOSTILE = "x.."  # dots in an account name never reach the file system as such


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every shared secret the simulator hands out, in order."""
    handed: list[str] = []
    counter = itertools.count(1)

    def token_hex(nbytes: int) -> str:
        value = f"shared-secret-{next(counter):04d}-" + "5e" * 16
        handed.append(value)
        return value

    monkeypatch.setattr(sim_callbacks, "secrets", SimpleNamespace(token_hex=token_hex))
    return handed


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    config = SimulatorConfig(credentials=Credentials.for_simulator({}))
    with Simulator(config, state_path=tmp_path / "sim.json") as simulator:
        yield simulator


def one_account(location: str = "https://hooks.example.com/location") -> str:
    """A configuration of ACCOUNT with an M2M service and one of each service that is
    answered with a shared secret (Location at ``location``)."""
    return f"""\
version: 1
accounts:
  "{ACCOUNT}":
    callbacks:
      DeviceUsage: {{url: "https://hooks.example.com/usage"}}
      Location: {{url: "{location}"}}
      DeviceLocation: {{url: "https://hooks.example.com/device-location"}}
      Diagnostics: {{url: "https://hooks.example.com/diagnostics"}}
"""


def config(tmp_path: Path, *, location: str = "https://hooks.example.com/location") -> Path:
    """``one_account``, and a second account whose name is hostile to file systems."""
    path = tmp_path / "callbacks.yaml"
    hostile = f"""\
  "{HOSTILE}":
    callbacks:
      Location: {{url: "https://hooks.example.com/hostile"}}
"""
    path.write_text(one_account(location) + hostile, "utf-8")
    return path


class Runs:
    """Runs ``tscallbacks`` in this process and keeps everything it printed."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.printed: list[str] = []

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        env = base_env(self.sim.base_url)
        code = cli.main(list(argv), env=env, stdin=io.StringIO(""), stdout=out, stderr=err)
        self.printed += [out.getvalue(), err.getvalue()]
        assert "Traceback" not in err.getvalue(), err.getvalue()
        return code, out.getvalue(), err.getvalue()


def writes(sim: Simulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sim.requests() if r.method in ("POST", "PUT", "DELETE")
            and "/callbacks" in r.path]  # fmt: skip


def assert_nowhere(secrets: list[str], texts: list[str], root: Path, keep: Path) -> None:
    """No secret in any text, nor in any file under ``root`` outside ``keep``."""
    assert secrets
    files = [p for p in root.rglob("*") if p.is_file() and keep not in p.parents]
    assert files  # the journal, the plan, the simulator's state at least
    for secret in secrets:
        for text in texts:
            assert secret not in text
        for path in files:
            assert secret.encode() not in path.read_bytes(), path


def secret_files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_secrets_reach_their_files_and_nothing_else(
    sim: Simulator, issued: list[str], tmp_path: Path
) -> None:
    tsc = Runs(sim)
    cfg, box, journal = config(tmp_path), tmp_path / "secrets", tmp_path / "journal.jsonl"
    plan_file = tmp_path / "plan.json"
    code, out, _ = tsc("plan", "-c", str(cfg), "--out", str(plan_file))
    assert code == 0
    assert (
        f"Note: {ACCOUNT}/Location: registering it makes the API issue an HMAC shared "
        f"secret; apply writes the new secret to --secrets-dir DIR/{ACCOUNT}/Location.secret"
        ", never to output." in out
    )
    assert "DIR/x%2E%2E/Location.secret" in out
    code, out, err = tsc("apply", str(plan_file), "--secrets-dir", str(box),
                         "--journal", str(journal))  # fmt: skip
    assert code == 0, err
    assert len(issued) == 4  # Location, DeviceLocation and Diagnostics, the hostile Location
    files = secret_files(box)
    assert sorted(files) == sorted([
        f"{ACCOUNT}/DeviceLocation.secret",
        f"{ACCOUNT}/Diagnostics.secret",
        f"{ACCOUNT}/Location.secret",
        "x%2E%2E/Location.secret",
    ])  # fmt: skip
    assert sorted(files.values()) == sorted(s + "\n" for s in issued)
    assert stat.S_IMODE(box.stat().st_mode) == 0o700
    for path in box.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
    assert f"{ACCOUNT}/Location: created; shared secret written to {box}/{ACCOUNT}/" in out

    # Converged: nothing to do, so nothing is asked of the secrets directory.
    assert tsc("plan", "-c", str(cfg), "--detailed-exitcode")[0] == 0
    assert tsc("apply", "-c", str(cfg), "--auto-approve")[0] == 0

    # A changed URL re-registers: the plan warns, the new secret replaces the old one.
    before = (box / ACCOUNT / "Location.secret").read_text()
    cfg = config(tmp_path, location="https://hooks.example.com/location-v2")
    code, out, _ = tsc("plan", "-c", str(cfg))
    assert f"{ACCOUNT}/Location: re-registering it may rotate its HMAC shared secret" in out
    code, out, err = tsc("apply", "-c", str(cfg), "--auto-approve", "--output", "json", "-vv",
                         "--secrets-dir", str(box), "--journal", str(journal))  # fmt: skip
    assert code == 0, err
    after = (box / ACCOUNT / "Location.secret").read_text()
    assert after == issued[-1] + "\n" and after != before
    doc = json.loads(out)
    assert doc["status"] == "applied"
    assert doc["changes"][0]["shared_secret"] == {
        "status": "delivered",
        "file": str(box / ACCOUNT / "Location.secret"),
        "error": None,
    }

    # Everything that shows or records registrations, for every account.
    tsc("show", str(plan_file))
    tsc("show", str(plan_file), "--output", "json")
    tsc("plan", "-c", str(cfg), "--output", "markdown")
    tsc("export", "--account", ACCOUNT, "--account", HOSTILE, "-o", str(tmp_path / "out.yaml"))
    tsc("export", "--account", ACCOUNT)
    tsc("export", "--from-journal", "last", "--journal", str(journal))
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    statuses = [r["shared_secret"]["status"] for r in records if "shared_secret" in r]
    assert statuses == ["delivered"] * 5
    assert_nowhere(issued, tsc.printed, tmp_path, keep=box)


def test_without_a_secrets_dir_apply_refuses_before_any_write(
    sim: Simulator, issued: list[str], tmp_path: Path
) -> None:
    tsc = Runs(sim)
    code, _, err = tsc("apply", "-c", str(config(tmp_path)), "--auto-approve")
    assert code == 1
    assert err == (
        f"Error: refusing to apply: registering {ACCOUNT}/DeviceLocation, "
        f"{ACCOUNT}/Diagnostics, {ACCOUNT}/Location, x../Location makes the API "
        "issue HMAC shared secrets, which would be lost without a place to write them; "
        "pass --secrets-dir DIR; nothing was changed\n"
    )
    assert writes(sim) == [] and issued == []


def test_a_saved_plan_without_a_secrets_dir_is_refused_before_logging_in(
    sim: Simulator, tmp_path: Path
) -> None:
    tsc = Runs(sim)
    plan_file = tmp_path / "plan.json"
    assert tsc("plan", "-c", str(config(tmp_path)), "--out", str(plan_file))[0] == 0
    sim.clear_requests()
    code, _, err = tsc("apply", str(plan_file))
    assert code == 1 and err.startswith("Error: refusing to apply: registering ")
    assert sim.requests() == []  # not even a token


@pytest.mark.parametrize("where", ["a-file", "a-file/secrets"])
def test_a_secrets_dir_that_cannot_be_written_is_refused_before_any_request(
    sim: Simulator, tmp_path: Path, where: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    tsc = Runs(sim)
    box = tmp_path / where
    code, _, err = tsc("apply", "-c", str(config(tmp_path)), "--auto-approve",
                       "--secrets-dir", str(box))  # fmt: skip
    assert code == 1
    assert err.startswith(f"Error: --secrets-dir {box}: cannot write there (")
    assert err.endswith("); nothing was changed\n") and err.count("\n") == 1
    assert sim.requests() == []


def test_accounts_sharing_a_secrets_folder_where_case_is_ignored_are_refused(
    sim: Simulator, issued: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system that ignores case (forced here: this one keeps it), two accounts
    differing only in case would write one secret over the other: refused, nothing sent
    but the reading."""
    real_check = SecretsDir.check

    def blind(self: SecretsDir) -> None:
        real_check(self)
        self.ignores_case = True

    monkeypatch.setattr(SecretsDir, "check", blind)
    path = tmp_path / "callbacks.yaml"
    path.write_text(
        "version: 1\naccounts:\n"
        '  "Acme-1": {callbacks: {Location: {url: "https://hooks.example.com/a"}}}\n'
        '  "acme-1": {callbacks: {Location: {url: "https://hooks.example.com/b"}}}\n',
        "utf-8",
    )
    box = tmp_path / "secrets"
    code, _, err = Runs(sim)("apply", "-c", str(path), "--auto-approve", "--secrets-dir", str(box))
    assert code == 1
    assert err.endswith(
        f"the shared secrets of Acme-1/Location and acme-1/Location would be the same file, "
        f"{box / 'acme-1' / 'Location.secret'}, on this file system, which ignores case; "
        "nothing was changed\n"
    )
    assert writes(sim) == [] and issued == [] and list(box.iterdir()) == []


def test_a_secret_that_cannot_be_delivered_is_reported_lost(
    sim: Simulator, issued: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: SecretsDir, account: str, service: str, secret: Any) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(SecretsDir, "write", refuse)
    tsc = Runs(sim)
    box, journal = tmp_path / "secrets", tmp_path / "journal.jsonl"
    code, out, err = tsc("apply", "-c", str(config(tmp_path)), "--auto-approve",
                         "--secrets-dir", str(box), "--journal", str(journal))  # fmt: skip
    assert code == 1
    assert len(issued) == 4  # the registrations were made: their secrets are lost
    lost = (
        f"{ACCOUNT}/Location: created; error: its new shared secret could not be written "
        f"to {box}/{ACCOUNT}/Location.secret (Permission denied) and is lost; the "
        "listener cannot verify callbacks until it is registered again"
    )
    assert lost in out  # as it happened
    assert f"Error: {lost}\n" in err  # and again at the end
    assert err.endswith(
        "Error: apply failed: 4 shared secrets could not be delivered and are lost\n"
    )
    assert f"{ACCOUNT}/DeviceUsage: created\n" in out
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    undelivered = [(r["service"], r["outcome"]) for r in records
                   if r.get("shared_secret", {}).get("status") == "undelivered"]  # fmt: skip
    assert sorted(undelivered) == [("DeviceLocation", "ok"), ("Diagnostics", "ok"),
                                   ("Location", "ok"), ("Location", "ok")]  # fmt: skip
    assert records[-1]["outcome"] == "failed" and records[-1]["exit"] == 1
    assert records[-1]["summary"]["secrets_lost"] == 4
    assert_nowhere(issued, tsc.printed, tmp_path, keep=box)


def test_deregistering_needs_no_secrets_dir(
    sim: Simulator, issued: list[str], tmp_path: Path
) -> None:
    tsc = Runs(sim)
    box = tmp_path / "secrets"
    assert tsc("apply", "-c", str(config(tmp_path)), "--auto-approve",
               "--secrets-dir", str(box))[0] == 0  # fmt: skip
    cfg = tmp_path / "callbacks.yaml"
    cfg.write_text(
        f'version: 1\naccounts:\n  "{ACCOUNT}":\n    callbacks:\n'
        '      DeviceUsage: {url: "https://hooks.example.com/usage"}\n'
        '      Location: {url: "https://hooks.example.com/location"}\n'
        '      Diagnostics: {url: "https://hooks.example.com/diagnostics"}\n',
        "utf-8",
    )
    sim.clear_requests()
    code, out, err = tsc("apply", "-c", str(cfg), "--auto-approve", "--account", ACCOUNT)
    assert code == 0, err
    assert writes(sim) == [("DELETE", f"/api/loc/v1/callbacks/{ACCOUNT}/name/DeviceLocation")]
    assert "shared secret" not in out


def test_a_registration_answered_without_a_secret_is_a_warning_even_with_q(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim_callbacks, "secrets", SimpleNamespace(token_hex=lambda n: ""))
    tsc = Runs(sim)
    box = tmp_path / "secrets"
    code, out, err = tsc("apply", "-c", str(config(tmp_path)), "--auto-approve", "-q",
                         "--secrets-dir", str(box))  # fmt: skip
    assert code == 0, err
    assert (
        f"{ACCOUNT}/DeviceLocation: created; warning: the API issued no shared secret (no "
        f"{HEADER} header in its answer); nothing was written to "
        f"{box}/{ACCOUNT}/DeviceLocation.secret\n"
    ) in out
    assert sorted(line.split(":")[0] for line in out.splitlines()) == [
        f"{ACCOUNT}/DeviceLocation", f"{ACCOUNT}/Diagnostics", f"{ACCOUNT}/Location",
        "Apply complete! Changes made", f"{HOSTILE}/Location"]  # fmt: skip
    assert [p for p in box.rglob("*") if p.is_file()] == []
