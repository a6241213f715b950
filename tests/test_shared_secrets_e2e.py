"""Shared secrets end to end for the real families: the ``tscallbacks`` command in its own
process against ``tscallbacks simulator serve`` over HTTP (issue 10, acceptance 4).

A secret the simulator issues for Device Location (``Location``, ``DeviceLocation``) and
Diagnostics ends up in its file under ``--secrets-dir`` (0600) and in no output stream,
plan, journal or export; without ``--secrets-dir`` apply refuses before any write.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_support import Result, base_env, run
from tests.test_journal_e2e import Served
from tests.test_shared_secrets_apply import ACCOUNT, one_account

pytestmark = pytest.mark.e2e

ISSUED = re.compile(r"[0-9a-f]{64}\n")  # the simulator's secrets: token_hex(32)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with Served(tmp_path / "sim.json", latency_ms=0) as server:
        yield server


def write_config(path: Path, location: str = "https://hooks.example.com/location") -> Path:
    path.write_text(one_account(location), "utf-8")
    return path


def test_secrets_reach_their_files_and_no_output_plan_journal_or_export(
    served: Served, tmp_path: Path
) -> None:
    env = base_env(served.base)
    cfg = write_config(tmp_path / "callbacks.yaml")
    box, journal, plan_file = tmp_path / "secrets", tmp_path / "j.jsonl", tmp_path / "plan.json"
    results: list[Result] = []

    def tsc(*args: str) -> Result:
        results.append(run(*args, env=env, cwd=tmp_path))
        return results[-1]

    planned = tsc("plan", "-c", str(cfg), "--out", str(plan_file))
    assert planned.code == 0, planned.output
    for service in ("Location", "DeviceLocation", "Diagnostics"):
        assert (
            f"Note: {ACCOUNT}/{service}: registering it makes the API issue an HMAC shared "
            f"secret; apply writes the new secret to --secrets-dir DIR/{ACCOUNT}/{service}"
            ".secret, never to output." in planned.stdout
        )

    refused = tsc("apply", "-c", str(cfg), "--auto-approve")
    assert refused.code == 1
    assert refused.stderr.startswith("Error: refusing to apply: registering ")
    assert "--secrets-dir DIR" in refused.stderr and refused.stderr.count("\n") == 1
    assert tsc("apply", str(plan_file)).code == 1  # a saved plan too
    assert served.write_calls() == []

    applied = tsc("apply", str(plan_file), "--secrets-dir", str(box), "--journal", str(journal))
    assert applied.code == 0, applied.output
    assert len(served.write_calls()) == 4
    secrets: dict[str, str] = {}
    for service in ("Location", "DeviceLocation", "Diagnostics"):
        path = box / ACCOUNT / f"{service}.secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secrets[service] = path.read_text()
        assert ISSUED.fullmatch(secrets[service]), service
        assert f"{ACCOUNT}/{service}: created; shared secret written to {path}" in applied.stdout
    assert stat.S_IMODE(box.stat().st_mode) == 0o700
    assert len(set(secrets.values())) == 3

    assert tsc("plan", "-c", str(cfg), "--detailed-exitcode").code == 0  # converged

    # Re-registering rotates: the new secret replaces the old one in its file.
    cfg = write_config(cfg, location="https://hooks.example.com/location-v2")
    assert (
        "re-registering it may rotate its HMAC shared secret" in tsc("plan", "-c", str(cfg)).stdout
    )
    rotated = tsc("apply", "-c", str(cfg), "--auto-approve", "--output", "json",
                  "--secrets-dir", str(box), "--journal", str(journal))  # fmt: skip
    assert rotated.code == 0, rotated.output
    assert json.loads(rotated.stdout)["changes"][0]["shared_secret"]["status"] == "delivered"
    new = (box / ACCOUNT / "Location.secret").read_text()
    assert ISSUED.fullmatch(new) and new != secrets["Location"]
    secrets["Location (old)"] = secrets["Location"]
    secrets["Location"] = new

    tsc("show", str(plan_file))
    tsc("plan", "-c", str(cfg), "--output", "json")
    tsc("plan", "-c", str(cfg), "--output", "markdown")
    tsc("export", "--account", ACCOUNT, "-o", str(tmp_path / "export.yaml"))
    tsc("export", "--account", ACCOUNT)
    tsc("export", "--from-journal", "last", "--journal", str(journal))

    files = [p for p in tmp_path.rglob("*") if p.is_file() and box not in p.parents]
    assert journal in files and plan_file in files and tmp_path / "export.yaml" in files
    for secret in (s.strip() for s in secrets.values()):
        for result in results:
            assert secret not in result.output
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
