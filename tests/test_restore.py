"""Reading a backup back from the journal, and ``export --from-journal`` (no network)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml

from reconciler import cli
from reconciler.core.errors import UsageError
from reconciler.core.families import FOTA, M2M
from reconciler.engine.executor import ChangeResult
from reconciler.engine.journal import Journal, RunInfo
from reconciler.engine.planner import make_plan
from reconciler.engine.restore import restore_point
from tests.helpers import current, desired, reg

JOURNAL = Path("journal.jsonl")


def journaled_run(*, prune: bool = True, backup: bool = True, path: Path = JOURNAL) -> str:
    before = current(
        {
            "A-1": {
                "DeviceUsage": reg("https://old.example.com/u", "ops", "old-password-1"),
                "QoS": reg("https://old.example.com/q", known=False),
            },
            "B-2": {},
        }
    )
    wanted = desired(
        {
            "A-1": {
                "DeviceUsage": reg("https://new.example.com/u"),
                "AlertService": reg("https://new.example.com/a"),
            },
            "B-2": {"Fota": reg("https://new.example.com/f")},
        },
        prune=prune,
    )
    journal = Journal.start(path, RunInfo(endpoint="https://ts.example.test", config="c.yaml"))
    if backup:
        read = {"A-1": frozenset({M2M, FOTA}) if prune else frozenset({M2M}),
                "B-2": frozenset({M2M, FOTA}) if prune else frozenset({FOTA})}  # fmt: skip
        journal.backup(before, read)
        plan = make_plan(wanted, before)
        journal.planned(plan)
        for change in plan.changes:
            journal.write(ChangeResult(change))
    journal.end(outcome="ok", exit_status=0)
    return journal.run_id


def export(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["export", *argv], env={}, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_a_backup_reads_back_as_the_state_it_recorded() -> None:
    run_id = journaled_run()
    point = restore_point(JOURNAL, run_id)
    assert point.run_id == run_id and point.config == "c.yaml"
    device = point.current.accounts["A-1"]["DeviceUsage"]
    assert (device.url, device.username, device.family) == ("https://old.example.com/u", "ops", M2M)
    assert device.password is not None and device.password_known
    assert str(device.password) == "(sensitive)"  # a stand-in, never a value
    qos = point.current.accounts["A-1"]["QoS"]
    assert qos.password is None and not qos.password_known
    assert point.current.accounts["B-2"] == {}
    assert point.complete("A-1") and point.complete("B-2")


def test_last_is_the_latest_run_with_a_backup() -> None:
    first = journaled_run()
    second = journaled_run()
    journaled_run(backup=False)  # stopped before reading
    assert first != second
    assert restore_point(JOURNAL, "last").run_id == second


def test_every_way_to_miss_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match=re.escape("no journal at journal.jsonl")):
        restore_point(JOURNAL, "last")
    without = journaled_run(backup=False)
    with pytest.raises(UsageError, match="no run in this journal has a backup"):
        restore_point(JOURNAL, "last")
    with pytest.raises(UsageError, match=f"run {without} stopped before it read"):
        restore_point(JOURNAL, without)
    with_backup = journaled_run()
    with pytest.raises(UsageError, match=f"no run nope in this journal; .*: {with_backup}$"):
        restore_point(JOURNAL, "nope")


def test_a_malformed_backup_names_its_line() -> None:
    run_id = journaled_run()
    lines = JOURNAL.read_text().splitlines()
    backup = json.loads(lines[1])
    backup["accounts"]["A-1"]["callbacks"]["DeviceUsage"]["password"] = "hunter2"
    lines[1] = json.dumps(backup)
    JOURNAL.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError) as caught:
        restore_point(JOURNAL, run_id)
    assert str(caught.value) == (
        f"journal.jsonl:2: the backup of run {run_id}: A-1/DeviceUsage: password must be one "
        "of set, unset, unknown"
    )


def test_a_torn_line_is_skipped() -> None:
    run_id = journaled_run()
    with JOURNAL.open("a") as handle:
        handle.write('{"record": "backup", "run_id": "torn", "accou')
    assert restore_point(JOURNAL, "last").run_id == run_id


def test_export_from_journal_writes_the_backup_as_a_configuration() -> None:
    run_id = journaled_run()
    code, out, err = export("--from-journal", run_id, "--journal", str(JOURNAL))
    assert code == 0, err
    assert out.startswith(f"# Rebuilt by tscallbacks from the backup of apply run {run_id} (")
    document = yaml.safe_load(out)
    assert document == {
        "version": 1,
        "accounts": {
            "A-1": {
                "prune": True,
                "callbacks": {
                    "DeviceUsage": {
                        "url": "https://old.example.com/u",
                        "username": "ops",
                        "password": "${env:TSC_A_1_DEVICEUSAGE_PASSWORD}",
                    },
                    "QoS": {"url": "https://old.example.com/q"},
                },
            },
            "B-2": {"prune": True, "callbacks": {}},
        },
    }
    assert err.splitlines()[0].startswith(f"Rebuilt from the backup of run {run_id} (")
    assert "set TSC_A_1_DEVICEUSAGE_PASSWORD before plan/apply" in err
    assert "old-password-1" not in out + err


def test_an_account_read_in_part_is_restored_without_pruning() -> None:
    journaled_run(prune=False)
    code, out, err = export("--from-journal", "last", "--journal", str(JOURNAL), "-q")
    assert code == 0, err
    accounts = yaml.safe_load(out)["accounts"]
    assert accounts["A-1"]["prune"] is False and accounts["B-2"]["prune"] is False
    # What the run created is not in the backup, and prune: false will not remove it.
    assert err.splitlines() == [
        "Note: A-1/DeviceUsage has a password: set TSC_A_1_DEVICEUSAGE_PASSWORD before plan/apply.",
        "Note: A-1/QoS: the API does not return passwords; add one to the file if the listener "
        "uses it.",
        f"Note: A-1/AlertService was created by run {restore_point(JOURNAL, 'last').run_id} and "
        "is not in its backup; with prune: false it is left in place: remove it by hand if it "
        "must go",
        f"Note: B-2/Fota was created by run {restore_point(JOURNAL, 'last').run_id} and is not "
        "in its backup; with prune: false it is left in place: remove it by hand if it must go",
    ]


def test_account_selects_from_the_backup() -> None:
    journaled_run()
    code, out, err = export("--from-journal", "last", "--journal", str(JOURNAL), "--account", "B-2")
    assert code == 0, err
    assert list(yaml.safe_load(out)["accounts"]) == ["B-2"]
    code, _, err = export("--from-journal", "last", "--journal", str(JOURNAL), "--account", "C-3")
    assert code == 1
    assert err.endswith("has no backup of account 'C-3' (it read: A-1, B-2)\n")


def test_export_needs_accounts_or_a_journal_run() -> None:
    code, out, err = export()
    assert (code, out) == (1, "")
    assert err == (
        "Error: export: name the accounts to export with --account NAME, or rebuild an earlier "
        "state with --from-journal RUN_ID (see 'tscallbacks export --help')\n"
    )


def test_export_from_a_missing_journal_is_one_line() -> None:
    code, out, err = export("--from-journal", "last")
    assert (code, out) == (1, "")
    assert err == (
        "Error: no journal at .tscallbacks/journal.jsonl (every apply writes one; "
        "--journal FILE names another)\n"
    )
