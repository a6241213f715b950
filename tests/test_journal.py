"""The apply journal, as a file: its records, one JSON object per line whatever the values,
no secret, created 0600, fsynced per record, a torn last line closed by the next run."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.errors import OutputError
from reconciler.core.families import FOTA, M2M
from reconciler.engine import journal as journal_module
from reconciler.engine.executor import ChangeResult
from reconciler.engine.journal import Journal, RunInfo
from reconciler.engine.planner import make_plan
from tests.helpers import current, desired, reg

SECRET = "hunter2-journal-secret"
NEW_SECRET = "new-journal-secret-value"
HOSTILE = 'a\nb\r\u2028\u2029\x85\x1b[2J"}\\{"record": "end"}'
WHEN = datetime(2025, 3, 14, 10, 15, 0, tzinfo=UTC)


def lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text("ascii")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def info(**fields: Any) -> RunInfo:
    base: dict[str, Any] = {"endpoint": "https://ts.example.test", "config": "callbacks.yaml"}
    return RunInfo(**{**base, **fields})


def sample_run(path: Path, *, values: str = "x") -> Journal:
    """A run with a backup, a plan of three changes and their results."""
    before = current(
        {
            "A-1": {
                "DeviceUsage": reg(f"https://old.example.com/{values}", values, SECRET),
                "CarrierService": reg("https://old.example.com/carrier"),
            }
        }
    )
    wanted = desired(
        {
            "A-1": {
                "DeviceUsage": reg(f"https://new.example.com/{values}", values, NEW_SECRET),
                "Fota": reg("https://new.example.com/fota"),
            }
        }
    )
    plan = make_plan(wanted, before)
    journal = Journal.start(path, info(user=values, ci_url=values), clock=lambda: WHEN)
    journal.backup(before, {"A-1": frozenset({M2M, FOTA})})
    journal.planned(plan)
    for change in plan.changes:
        failed = "HTTP 400 refused" if change.action.value == "delete" else None
        journal.write(ChangeResult(change, error=failed))
    journal.end(outcome="failed", exit_status=1, error="apply failed: 1 of 3 changes failed")
    return journal


def test_a_run_is_recorded_in_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = sample_run(path)
    records = lines(path)
    assert [r["record"] for r in records] == ["run", "backup", "plan", *["write"] * 3, "end"]
    assert {r["run_id"] for r in records} == {journal.run_id}
    assert journal.run_id.startswith("20250314T101500Z-")
    run = records[0]
    assert run["time"] == "2025-03-14T10:15:00.000000Z"
    assert run["endpoint"] == "https://ts.example.test" and run["config"] == "callbacks.yaml"
    assert run["command"] == "apply" and run["format"] == 1 and run["version"]
    assert records[1]["accounts"] == {
        "A-1": {
            "families": ["m2m", "fota"],
            "callbacks": {
                "CarrierService": {
                    "family": "m2m",
                    "url": "https://old.example.com/carrier",
                    "username": None,
                    "password": "unset",
                },
                "DeviceUsage": {
                    "family": "m2m",
                    "url": "https://old.example.com/x",
                    "username": "x",
                    "password": "set",
                },
            },
        }
    }
    writes = {r["service"]: r for r in records[3:6]}
    assert writes["DeviceUsage"]["action"] == "update"
    assert writes["DeviceUsage"]["after"]["password"] == "changed"
    assert writes["DeviceUsage"]["before"]["password"] == "set"
    assert writes["Fota"]["outcome"] == "ok" and writes["Fota"]["error"] is None
    assert writes["CarrierService"]["outcome"] == "failed"
    assert writes["CarrierService"]["error"] == "HTTP 400 refused"
    assert records[-1]["summary"] == {
        "create": 1,
        "update": 1,
        "delete": 0,
        "failed": 1,
        "planned": 3,
    }
    assert records[-1]["outcome"] == "failed" and records[-1]["exit"] == 1


def test_no_secret_is_ever_written(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    sample_run(path)
    text = path.read_text("ascii")
    assert SECRET not in text and NEW_SECRET not in text
    assert "(sensitive)" not in text  # passwords are states, not masked values


def test_hostile_values_stay_on_their_line_and_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    sample_run(path, values=HOSTILE)
    raw = path.read_bytes()
    assert raw.isascii()
    assert raw.count(b"\n") == 7  # one per record: nothing in a value breaks a line
    records = lines(path)
    assert records[0]["user"] == HOSTILE and records[0]["ci_url"] == HOSTILE
    device = records[1]["accounts"]["A-1"]["callbacks"]["DeviceUsage"]
    assert device["username"] == HOSTILE and device["url"].endswith(HOSTILE)


def test_the_file_is_created_private_with_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "journal.jsonl"
    Journal.start(path, info()).end(outcome="ok", exit_status=0)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Journal.start(path, info()).end(outcome="ok", exit_status=0)  # appends
    assert [r["record"] for r in lines(path)] == ["run", "end", "run", "end"]


def test_every_record_is_fsynced_before_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(journal_module.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    sample_run(tmp_path / "journal.jsonl")
    assert len(synced) == 7


def test_a_torn_last_line_is_closed_by_the_next_run(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"record": "write", "run_id": "x", "outcome": "o')  # a crash mid-line
    Journal.start(path, info()).end(outcome="ok", exit_status=0)
    first, *rest = path.read_text("ascii").split("\n")
    assert first == '{"record": "write", "run_id": "x", "outcome": "o'
    assert [json.loads(line)["record"] for line in rest if line] == ["run", "end"]


def test_a_journal_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError) as caught:
        Journal.start(blocker / "journal.jsonl", info())
    assert str(caught.value) == (
        f"cannot write the journal {blocker / 'journal.jsonl'}: a directory on its path is a file "
        "(choose another file with --journal)"
    )


def test_a_write_that_fails_midway_is_an_error_too(tmp_path: Path) -> None:
    journal = Journal.start(tmp_path / "journal.jsonl", info())
    journal.close()
    assert not journal.halt.is_set()
    with pytest.raises(OutputError, match="is closed"):
        journal.end(outcome="ok", exit_status=0)
    assert journal.halt.is_set()  # the apply starts no new change after this


def test_a_failing_disk_halts_the_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal.start(tmp_path / "journal.jsonl", info())

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module.os, "fsync", full)
    with pytest.raises(OutputError) as caught:
        journal.end(outcome="ok", exit_status=0)
    assert str(caught.value).endswith(
        ": No space left on device (choose another file with --journal)"
    )
    assert journal.halt.is_set()
