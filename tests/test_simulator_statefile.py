"""The simulator's state file: its layout, appends and compaction, appends cut short, and
one file shared by several stores and processes (nobody's writes are lost)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from reconciler.simulator import statefile
from reconciler.simulator.state import RegistrationStore, StoredCallback
from reconciler.simulator.statefile import StateFile
from tests.e2e_support import COMMAND, base_env

SERVICES = ("DeviceUsage", "CarrierService", "QoS", "AlertService", "Fota")


def stored_accounts(path: Path) -> dict[str, Any]:
    accounts: dict[str, Any] = json.loads(path.read_text("utf-8"))["accounts"]
    return accounts


def callback(n: int) -> StoredCallback:
    return StoredCallback(f"https://hooks.example.com/{n}")


def revision(path: Path) -> str:
    found = re.match(r'\{"version": 1, "revision": "([0-9a-f]{16})"', path.read_text("utf-8"))
    assert found, "not the state file's layout"
    return found.group(1)


# --- layout, appends, compaction ---------------------------------------------------------


def test_an_old_indented_file_loads_and_the_first_change_rewrites_it(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    old = {"version": 1, "accounts": {"A": {"QoS": {"url": "https://x/", "password": "p"}}}}
    path.write_text(json.dumps(old, indent=2) + "\n", "utf-8")
    store = RegistrationStore(path)
    assert store.snapshot() == old
    store.put("B", "QoS", callback(1))
    lines = path.read_text("utf-8").splitlines()
    assert lines == [
        f'{{"version": 1, "revision": "{revision(path)}", "accounts": {{',
        '"A": {"QoS": {"url": "https://x/", "password": "p"}}',
        ',"B": {"QoS": {"url": "https://hooks.example.com/1"}}',
        "}}",
    ]


def test_an_old_file_is_not_read_again_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    old = {"version": 1, "accounts": {"A": {"QoS": {"url": "https://x/"}}}}
    path.write_text(json.dumps(old, indent=2) + "\n", "utf-8")
    store = RegistrationStore(path)
    reads: list[Path] = []
    real = StateFile.read

    def counted(self: StateFile, parse: Any) -> Any:
        reads.append(self.path)
        return real(self, parse)

    monkeypatch.setattr(StateFile, "read", counted)
    for _ in range(3):
        assert store.snapshot() == old
    assert reads == []  # unchanged: not read again for every request
    newer = {"version": 1, "accounts": {"A": {"QoS": {"url": "https://y/"}}}}
    path.write_text(json.dumps(newer, indent=2) + "\n\n", "utf-8")  # another writer
    assert store.snapshot() == newer and len(reads) == 1


def test_changes_are_appended_and_the_last_line_of_an_account_counts(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = RegistrationStore(path)
    store.put("A", "QoS", callback(0))
    inode, first = os.stat(path).st_ino, revision(path)
    for n in range(1, 20):
        store.put("A", f"Service{n}", callback(n))
    store.remove("A", "QoS")
    assert (os.stat(path).st_ino, revision(path)) == (inode, first)  # appended in place
    lines = path.read_text("utf-8").splitlines()
    assert len(lines) == 1 + 21 + 1  # the header, a line per change, the closing
    assert all(line.lstrip(",").startswith('"A": ') for line in lines[1:-1])
    assert json.loads(path.read_text("utf-8"))["accounts"] == store.snapshot()["accounts"]
    assert RegistrationStore(path).snapshot() == store.snapshot()


def test_the_file_is_compacted_once_it_has_doubled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statefile, "APPEND_SLACK_BYTES", 0)
    path = tmp_path / "state.json"
    store = RegistrationStore(path)
    revisions: list[str] = []
    for n in range(40):
        store.put("A", f"Service{n % 5}", callback(n))
        revisions.append(revision(path))
        if len(revisions) > 1 and revisions[-1] != revisions[-2]:  # rewritten, compacted
            assert len(path.read_text("utf-8").splitlines()) == 3
        assert json.loads(path.read_text("utf-8"))["accounts"] == store.snapshot()["accounts"]
    assert 2 < len(set(revisions)) < 40  # some changes appended, some rewrote the file
    assert RegistrationStore(path).snapshot() == store.snapshot()


@pytest.mark.parametrize("landed", [1, 2, 3, 10, -4, -3, -2, -1])
def test_an_append_cut_short_loses_nothing_acknowledged(tmp_path: Path, landed: int) -> None:
    """A crash (or a reader) mid-append meets the bytes that landed so far, then what is
    left of the closing ``}}``: the incomplete last line is dropped."""
    path = tmp_path / "state.json"
    store = RegistrationStore(path)
    store.put("A", "QoS", callback(1))
    store.put("B", "QoS", callback(2))
    before = path.read_bytes()
    store.put("C", "QoS", callback(3))
    closing = len(before) - len(b"}}\n")
    data = path.read_bytes()[closing:]
    assert path.read_bytes()[:closing] == before[:closing]  # the change was appended
    count = landed if landed > 0 else len(data) + landed
    path.write_bytes(before[:closing] + data[:count] + before[closing + count :])
    loaded = RegistrationStore(path)
    accounts = loaded.snapshot()["accounts"]
    assert accounts["A"] == {"QoS": callback(1).to_dict()}
    assert accounts["B"] == {"QoS": callback(2).to_dict()}
    if count < len(data) - len(b"}}\n"):  # the line of C did not land whole
        assert "C" not in accounts
    elif "C" in accounts:
        assert accounts["C"] == {"QoS": callback(3).to_dict()}
    loaded.put("D", "QoS", callback(4))  # the next change makes the file whole again
    assert json.loads(path.read_text("utf-8"))["accounts"] == loaded.snapshot()["accounts"]


# --- two stores in one process -----------------------------------------------------------


def test_two_stores_on_one_path_interleave_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first, second = RegistrationStore(path), RegistrationStore(path)  # both read "no file"
    first.put("A", "QoS", callback(1))
    assert second.registrations("A") == [("QoS", callback(1))]  # a read sees it
    second.put("B", "QoS", callback(2))
    first.put("A", "DeviceUsage", callback(3))
    assert second.replace("A", "QoS", callback(4))  # the registration the other store made
    assert first.remove("B", "QoS") == callback(2)
    assert second.registrations("A") == [("QoS", callback(4)), ("DeviceUsage", callback(3))]
    expected = {"A": {"QoS": callback(4).to_dict(), "DeviceUsage": callback(3).to_dict()}}
    assert stored_accounts(path) == expected
    for store in (first, second, RegistrationStore(path)):
        assert store.snapshot()["accounts"] == expected


def test_a_rewrite_with_the_same_stat_is_still_seen(tmp_path: Path) -> None:
    """Same inode, size and mtime (a coarse timestamp clock and a reused inode number can
    produce that): another revision is another version."""
    path = tmp_path / "state.json"
    store = RegistrationStore(path)
    store.put("A", "QoS", StoredCallback("https://x/1"))
    before = os.stat(path)
    text = path.read_text("utf-8")
    rewritten = re.sub(r'"revision": "[0-9a-f]{16}"', '"revision": "0123456789abcdef"', text)
    with path.open("r+", encoding="utf-8") as handle:  # in place: the inode stays
        handle.write(rewritten.replace("https://x/1", "https://x/2"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert store.registrations("A") == [("QoS", StoredCallback("https://x/2"))]


def test_two_stores_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    """Only the file lock keeps the two stores apart: each has its own memory and locks."""
    path = tmp_path / "state.json"
    stores = [RegistrationStore(path), RegistrationStore(path)]
    errors: list[BaseException] = []

    def work(store: RegistrationStore, worker: int) -> None:
        try:
            for n in range(25):
                store.put(f"acct-{worker}-{n}", "QoS", callback(n))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(stores[worker % 2], worker)) for worker in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    expected = {f"acct-{w}-{n}" for w in range(8) for n in range(25)}
    assert set(stored_accounts(path)) == expected
    for store in stores:
        assert set(store.snapshot()["accounts"]) == expected
        store.close()


def test_a_failed_commit_leaves_what_the_file_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever fails between applying a change and writing it, the store then shows what
    the file holds, and later changes still land."""
    path = tmp_path / "state.json"
    store = RegistrationStore(path)
    store.put("A", "QoS", callback(1))

    def refuse(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(StateFile, "save", refuse)
        patched.setattr(StateFile, "rewrite", refuse)
        with pytest.raises(OSError, match="No space"):
            store.put("A", "DeviceUsage", callback(2))
        with pytest.raises(OSError, match="No space"):
            store.remove("A", "QoS")
    assert store.registrations("A") == [("QoS", callback(1))]
    store.put("B", "QoS", callback(3))
    assert stored_accounts(path) == {
        "A": {"QoS": callback(1).to_dict()},
        "B": {"QoS": callback(3).to_dict()},
    }


# --- two processes -----------------------------------------------------------------------


def write_config(path: Path, prefix: str, accounts: int) -> dict[str, dict[str, str]]:
    """A configuration of ``accounts`` accounts; returns what the simulator should store."""
    lines = ["version: 1", "accounts:"]
    expected: dict[str, dict[str, str]] = {}
    for n in range(accounts):
        name = f"{prefix}{n:06d}-00001"
        lines += [f'  "{name}":', "    callbacks:"]
        for service in SERVICES:
            url = f"https://hooks.example.com/{name}/{service}"
            lines += [f"      {service}:", f"        url: {url}"]
            expected.setdefault(name, {})[service] = url
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return expected


@pytest.mark.e2e
@pytest.mark.parametrize("trial", range(5))
def test_two_simulator_runs_in_one_directory_keep_both(tmp_path: Path, trial: int) -> None:
    """Two ``apply --simulator`` at once in one directory, each with its own accounts."""
    expected: dict[str, dict[str, str]] = {}
    commands = []
    for prefix in ("0252", "0253"):
        config = tmp_path / f"{prefix}.yaml"
        expected |= write_config(config, prefix, accounts=30)
        commands.append([str(COMMAND), "apply", "--simulator", "--auto-approve", "-c", str(config)])
    runs = [
        subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in commands
    ]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, out + err
    stored = stored_accounts(tmp_path / ".tscallbacks" / "simulator.json")
    assert {
        account: {service: entry["url"] for service, entry in services.items()}
        for account, services in stored.items()
    } == expected
