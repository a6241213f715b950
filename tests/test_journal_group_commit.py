"""The journal's group commit: lines written by several workers at once share an fsync,
and every writer still returns only once its own line is on disk."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from reconciler.engine import journal as journal_module
from reconciler.engine.executor import AccountHalt
from reconciler.engine.journal import Journal, RunInfo

WORKERS = 8


def test_lines_written_during_an_fsync_share_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal.start(path, RunInfo(endpoint="e", config="c.yaml"))
    real = os.fsync
    synced: list[int] = []  # how many lines were written when each fsync began
    on_disk: dict[str, bool] = {}

    def slow_fsync(fd: int) -> None:
        if not synced:  # the first one waits until every worker has written its line
            while journal._written < 1 + WORKERS:
                threading.Event().wait(0.001)
        synced.append(journal._written)
        real(fd)

    monkeypatch.setattr(journal_module.os, "fsync", slow_fsync)

    def worker(n: int) -> None:
        journal.halted(AccountHalt(f"account-{n}", "reason"))
        # Returning means this worker's line is on disk: an fsync began after it was written.
        on_disk[f"account-{n}"] = any(count >= 2 for count in synced)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(synced) == 2  # one fsync for the first line, one for the seven others
    assert synced[1] == 1 + WORKERS
    assert all(on_disk.values()) and len(on_disk) == WORKERS
    journal.end(outcome="failed", exit_status=1)
    records = [json.loads(line) for line in path.read_text("ascii").splitlines()]
    assert sorted(r["account"] for r in records if r["record"] == "halt") == sorted(on_disk)
