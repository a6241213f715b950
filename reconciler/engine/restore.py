"""Reading the journal back: a run's backup as the :class:`CurrentState` it recorded.

``tscallbacks export --from-journal RUN_ID`` renders that state as a configuration, so
an operator can put back what was there before a bad apply. The journal is read
leniently where a crash may have left a mark (a torn last line is skipped) and strictly
where a restore depends on it (a malformed backup is an error naming its line).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler.core.errors import UsageError
from reconciler.core.families import DEFAULT_MANAGED, FamilySpec, all_families, by_name
from reconciler.core.model import CurrentState, Registration
from reconciler.core.secrets import Secret

LAST = "last"
_PASSWORD_STATES = ("set", "unset", "unknown")
# Stands for a password the backup says was set; never sent, never shown (export writes
# an ${env:NAME} reference for it).
_WAS_SET = Secret("(a password was set)")


@dataclass(frozen=True)
class RestorePoint:
    """What run ``run_id`` found before writing.

    ``families``: what it read per account (only there is the backup complete);
    ``created``: per account, the services the run registered that were not there
    before (a restore without pruning leaves them, so the caller says so).
    """

    run_id: str
    time: str
    config: str | None
    endpoint: str | None
    current: CurrentState
    families: Mapping[str, frozenset[FamilySpec]]
    created: Mapping[str, tuple[str, ...]]

    def complete(self, account: str) -> bool:
        """Whether the families a configuration prunes by default were all read for
        ``account`` (then pruning, with :meth:`manage`, restores exactly)."""
        return self.families.get(account, frozenset()) >= frozenset(DEFAULT_MANAGED)

    def manage(self, account: str) -> list[str] | None:
        """The ``manage:`` list that makes pruning cover exactly the families read, when
        that is not the default."""
        read = self.families.get(account, frozenset())
        if not self.complete(account) or read == frozenset(DEFAULT_MANAGED):
            return None
        return [spec.name for spec in all_families() if spec in read]


Record = tuple[int, dict[str, Any]]  # (line number, object)


def read_records(path: Path) -> list[Record]:
    """Every complete JSON object in the journal, with its line number."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"no journal at {path} (every apply writes one; --journal FILE names another)"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read the journal {path}: {exc.strerror}") from None
    records: list[Record] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            continue  # blank, or torn by a crash mid-write
        if isinstance(value, dict) and isinstance(value.get("run_id"), str):
            records.append((number, value))
    return records


def restore_point(path: Path, run_id: str) -> RestorePoint:
    """The backup of run ``run_id`` (``last``: the latest run that has one)."""
    records = read_records(path)
    backups = [(n, r) for n, r in records if r.get("record") == "backup"]
    if run_id == LAST:
        if not backups:
            raise UsageError(f"{path}: no run in this journal has a backup")
        run_id = backups[-1][1]["run_id"]
    found = [(n, r) for n, r in backups if r["run_id"] == run_id]
    runs = [r for _, r in records if r.get("record") == "run" and r["run_id"] == run_id]
    if not found:
        if runs:
            raise UsageError(
                f"{path}: run {run_id} stopped before it read the remote state; "
                "it has no backup (and changed nothing)"
            )
        recent = ", ".join(dict.fromkeys(r["run_id"] for _, r in reversed(backups)))
        hint = f"; runs with a backup, latest first: {recent}" if recent else ""
        raise UsageError(f"{path}: no run {run_id} in this journal{hint}")
    number, backup = found[-1]
    run = runs[-1] if runs else {}
    where = f"{path}:{number}: the backup of run {run_id}"
    current, families = _parse_backup(backup, where)
    return RestorePoint(
        run_id=run_id,
        time=_text(backup.get("time")) or "",
        config=_text(run.get("config")),
        endpoint=_text(run.get("endpoint")),
        current=current,
        families=families,
        created=_created(records, run_id, current),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _parse_backup(
    backup: dict[str, Any], where: str
) -> tuple[CurrentState, Mapping[str, frozenset[FamilySpec]]]:
    accounts = backup.get("accounts")
    if not isinstance(accounts, dict):
        raise UsageError(f"{where} has no accounts")
    state: dict[str, Mapping[str, Registration]] = {}
    families: dict[str, frozenset[FamilySpec]] = {}
    for account, entry in accounts.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("callbacks"), dict):
            raise UsageError(f"{where}: account {account} is malformed")
        read = entry.get("families")
        if not isinstance(read, list) or not all(isinstance(f, str) for f in read):
            raise UsageError(f"{where}: account {account} has no list of families read")
        families[account] = frozenset(_family(name, where) for name in read)
        callbacks = {
            service: _registration(value, f"{where}: {account}/{service}")
            for service, value in entry["callbacks"].items()
        }
        state[account] = MappingProxyType(callbacks)
    return CurrentState(accounts=MappingProxyType(state)), MappingProxyType(families)


def _family(name: object, where: str) -> FamilySpec:
    spec = by_name(name) if isinstance(name, str) else None
    if spec is None:
        raise UsageError(f"{where} names an unknown API family {name!r}")
    return spec


def _registration(value: object, where: str) -> Registration:
    if not isinstance(value, dict):
        raise UsageError(f"{where} is malformed")
    url, username, password = value.get("url"), value.get("username"), value.get("password")
    if not isinstance(url, str) or not url:
        raise UsageError(f"{where} has no url")
    if username is not None and not isinstance(username, str):
        raise UsageError(f"{where} has a username that is not a string")
    if password not in _PASSWORD_STATES:
        raise UsageError(f"{where}: password must be one of {', '.join(_PASSWORD_STATES)}")
    return Registration(
        url=url,
        username=username or None,
        password=_WAS_SET if password == "set" else None,
        password_known=password != "unknown",
        family=_family(value.get("family"), where),
    )


def _created(
    records: list[Record], run_id: str, before: CurrentState
) -> Mapping[str, tuple[str, ...]]:
    """Services the run registered that its backup did not hold."""
    created: dict[str, list[str]] = {}
    for _, record in records:
        if record.get("record") != "write" or record["run_id"] != run_id:
            continue
        account, service = record.get("account"), record.get("service")
        if (
            record.get("outcome") == "ok"
            and record.get("action") == "create"
            and isinstance(account, str)
            and isinstance(service, str)
            and service not in before.accounts.get(account, {})
        ):
            created.setdefault(account, []).append(service)
    return MappingProxyType({a: tuple(s) for a, s in created.items()})
