"""The apply journal: an append-only JSON-lines record of what every apply found and did.

One object per line, in this order for a run (every record names its ``run_id``):

- ``run``: who and where (user, host, the CI job's URL), when (UTC), the tscallbacks
  version, the endpoint, the configuration path;
- ``backup``: the remote state read before anything was written, per account (the
  families read) and per service (family, url, username, and the password only as
  ``set``/``unset``/``unknown``); ``tscallbacks export --from-journal`` rebuilds a
  configuration from it (see :mod:`reconciler.engine.restore`);
- ``plan``: the changes about to be made (what a killed run meant to do);
- ``write``: one per change, with its outcome (``ok`` or ``failed`` and the error), and
  for a registration answered with a shared secret, ``shared_secret``: ``status``
  (``delivered``, ``not_issued`` or ``undelivered``: lost), ``file`` and ``error``;
- ``end``: the outcome of the run, its exit status and counts.

No secret is ever written: a password is ``set``, ``unset``, ``unknown`` or ``changed``,
never a value or a digest; error text from the API arrives scrubbed. Every string is
JSON-escaped in ASCII (:func:`reconciler.core.escape.json_text`), so a value with a
newline or a line separator in it cannot break a line. The file is created 0600, and
each line is written whole and fsynced before the run goes on: a run that is killed
leaves complete lines (a torn last line, from a crash of the machine itself, is skipped
by the reader and closed by the next writer).
"""

from __future__ import annotations

import errno
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from secrets import token_hex
from typing import Any

from reconciler import __version__
from reconciler.core import escape
from reconciler.core.errors import OutputError
from reconciler.core.families import HTTP_HEADERS, FamilySpec, all_families
from reconciler.core.model import CurrentState, Registration
from reconciler.engine.executor import AccountHalt, ChangeResult
from reconciler.engine.plan import Action, Change, Plan

FORMAT = 1
DEFAULT_JOURNAL = Path(".tscallbacks") / "journal.jsonl"


@dataclass(frozen=True)
class RunInfo:
    """Who runs what where; every field may be None when unknown."""

    endpoint: str
    config: str
    planfile: str | None = None
    user: str | None = None
    host: str | None = None
    ci_url: str | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id(when: datetime) -> str:
    """Sortable and unique enough to name on a command line: ``20250314T101500Z-3f9a1c``."""
    return f"{when.astimezone(UTC):%Y%m%dT%H%M%SZ}-{token_hex(3)}"


def password_state(reg: Registration) -> str:
    """A password as the journal may record it: never the value."""
    if not reg.password_known:
        return "unknown"
    return "set" if reg.password is not None else "unset"


def registration_record(reg: Registration | None) -> dict[str, Any] | None:
    if reg is None:
        return None
    record: dict[str, Any] = {
        "url": reg.url,
        "username": reg.username,
        "password": password_state(reg),
    }
    if not reg.headers_known:
        record[HTTP_HEADERS] = "unknown"
    elif reg.headers:  # names only, never a value; absent when there are none
        record[HTTP_HEADERS] = [name for name, _ in reg.headers]
    return record


def _after_record(change: Change) -> dict[str, Any] | None:
    after = registration_record(change.after)
    changed = change.action is Action.UPDATE and any(f.name == "password" for f in change.fields)
    if after is not None and after["password"] == "set" and changed:
        after["password"] = "changed"
    return after


def _change_record(change: Change) -> dict[str, Any]:
    return {
        "action": change.action.value,
        "account": change.account,
        "service": change.service,
        "family": change.family.name,
        "changed_fields": [f.name for f in change.fields],
        "before": registration_record(change.before),
        "after": _after_record(change),
    }


class Journal:
    """One run's records, appended to one file. Thread-safe (writes come from the
    executor's workers). Open with :meth:`start`; every method raises OutputError when
    the file cannot be written."""

    def __init__(self, path: Path, fd: int, run_id: str, clock: Callable[[], datetime]) -> None:
        self.path = path
        self.run_id = run_id
        self._fd: int | None = fd
        self._clock = clock
        self._lock = threading.Lock()
        # Set once a record could not be written: the apply starts no new change (pass it
        # as the executor's ``stop``), since what follows could not be recorded.
        self.halt = threading.Event()
        self._done: Counter[str] = Counter()  # "create"/"update"/"delete" made, "failed"
        self._planned = 0

    @classmethod
    def start(cls, path: Path, run: RunInfo, *, clock: Callable[[], datetime] = utc_now) -> Journal:
        """Open (create 0600, or append to) ``path`` and write the run record."""
        when = clock()
        fd, torn = _open(path)
        journal = cls(path, fd, new_run_id(when), clock)
        if torn:
            journal._append("\n")
        journal._record(
            "run",
            {
                "format": FORMAT,
                "version": __version__,
                "command": "apply",
                "endpoint": run.endpoint,
                "config": run.config,
                "planfile": run.planfile,
                "user": run.user,
                "host": run.host,
                "ci_url": run.ci_url,
            },
            when=when,
        )
        return journal

    def backup(self, current: CurrentState, read: Mapping[str, frozenset[FamilySpec]]) -> None:
        """The remote state read before writing: per account, the families read and
        every registration found in them."""
        accounts: dict[str, Any] = {}
        for account, registrations in current.accounts.items():
            families = read.get(account, frozenset())
            callbacks: dict[str, Any] = {}
            for service in sorted(registrations):
                reg = registrations[service]
                entry = registration_record(reg)
                assert entry is not None
                family = reg.family.name if reg.family is not None else None
                callbacks[service] = {"family": family, **entry}
            accounts[account] = {
                "families": [f.name for f in all_families() if f in families],
                "callbacks": callbacks,
            }
        self._record("backup", {"accounts": accounts})

    def planned(self, plan: Plan) -> None:
        """The changes about to be made."""
        with self._lock:
            self._planned = len(plan.changes)
        self._record("plan", {"changes": [_change_record(c) for c in plan.changes]})

    def write(self, result: ChangeResult) -> None:
        """One change made, or not (``on_result`` of the executor)."""
        with self._lock:
            self._done[result.change.action.value if result.ok else "failed"] += 1
            self._done["secret_lost"] += result.secret_lost
        # A shared secret is recorded by what became of it and its file, never its value.
        secret = {"shared_secret": result.secret.to_dict()} if result.secret else {}
        self._record(
            "write",
            {
                **_change_record(result.change),
                "outcome": "ok" if result.ok else "failed",
                "error": result.error,
                **secret,
            },
        )

    def halted(self, halt: AccountHalt) -> None:
        """An account left alone: changed by someone else since the plan (or while this
        run wrote to it), so its remaining changes were not made."""
        with self._lock:
            self._done["halted"] += 1
        self._record("halt", {"account": halt.account, "reason": halt.reason})

    def failed(self) -> int:
        """How many changes recorded so far failed, or lost the shared secret they were
        answered with."""
        with self._lock:
            return self._done["failed"] + self._done["secret_lost"]

    def end(self, *, outcome: str, exit_status: int, error: str | None = None) -> None:
        """The run's last record; closes the file. ``outcome``: ``ok``, ``failed``,
        ``interrupted`` or ``error``."""
        with self._lock:
            done = dict(self._done)
            planned = self._planned
        summary = {a.value: done.get(a.value, 0) for a in Action}
        summary["failed"] = done.get("failed", 0)
        if done.get("secret_lost"):
            summary["secrets_lost"] = done["secret_lost"]
        summary["planned"] = planned
        record = {"outcome": outcome, "exit": exit_status, "summary": summary, "error": error}
        try:
            self._record("end", record)
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    # -- writing ------------------------------------------------------------------------

    def _record(
        self, kind: str, fields: Mapping[str, Any], *, when: datetime | None = None
    ) -> None:
        record = {
            "record": kind,
            "run_id": self.run_id,
            "time": timestamp(when or self._clock()),
            **fields,
        }
        self._append(escape.json_text(record) + "\n")

    def _append(self, line: str) -> None:
        data = line.encode("ascii")  # json_text is ASCII: nothing can split a line
        with self._lock:
            if self._fd is None:
                self.halt.set()
                raise OutputError(f"the journal {self.path} is closed")
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
                os.fsync(self._fd)
            except OSError as exc:
                self.halt.set()
                raise _cannot(self.path, exc) from None


def _open(path: Path) -> tuple[int, bool]:
    """An append-only descriptor (the file created 0600 with its directories), and whether
    the file ends in a torn line."""
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # something on the way is a file
            raise NotADirectoryError(errno.ENOTDIR, "a directory on its path is a file") from None
        torn = _ends_torn(path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        return os.open(path, flags, 0o600), torn
    except OSError as exc:
        raise _cannot(path, exc) from None


def _ends_torn(path: Path) -> bool:
    """Whether the file's last line lacks its newline (a crash mid-write)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


def _cannot(path: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write the journal {path}: {exc.strerror or type(exc).__name__} "
        "(choose another file with --journal)"
    )
