"""The state file as several processes share it: its layout, its lock, its change check.

The file is one JSON document, one account a line::

    {"version": 1, "revision": "3f09c2d4a1b7e865", "accounts": {
    "0252012345-00001": {"DeviceUsage": {"url": "..."}}
    ,"0252012345-00002": {"QoS": {"url": "..."}}
    ,"0252012345-00001": {"DeviceUsage": {"url": "..."}, "QoS": {"url": "..."}}
    }}

What each line holds is the store's business (:mod:`reconciler.simulator.state`): an
account and all its registrations (``{}``: none left). A change appends the lines of the
accounts it changed in place of the closing ``}}`` (one write, fsync'ed); an account may
so appear more than once, and its last line counts, as ``json.load`` reads it. When the
file would grow past twice its size at its last rewrite (+64 KiB), or the process has read
it since it last wrote it, the file is rewritten instead: compacted, with a new random
``revision``, atomically (:func:`write_atomically`). Files without a revision, indented
(older simulators wrote them), still load; the first change rewrites them.

A crash or a reader mid-append can meet an incomplete last line (a prefix of the append,
followed by what is left of ``}}``): that line is dropped, as it was never acknowledged.

Whether another process wrote since this one last read or wrote is answered without
parsing: the file's ``(st_dev, st_ino, st_mtime_ns, st_size)`` and the revision at its
start must both be what this process saw. An append always makes the file longer; a
rewrite sets a new revision. The stat alone would not do: once the version this process
saw is replaced, its inode number is free, and a later rewrite of the same size within the
same tick of the file system's timestamp clock (1-10 ms on Linux, 2 s on FAT) may get it
and look identical. The stat catches writers that keep the revision (an edit in place). A
file whose start carries no revision (an older simulator's) is judged by the stat alone
until the first change rewrites it.

The lock is ``<name>.lock`` beside the file (advisory: every simulator takes it), opened
once and locked with ``filelock``'s descriptor lock (``flock`` on POSIX, ``LockFileEx`` on
Windows): one system call, where ``filelock.FileLock`` opens and closes the lock file each
time (measured: about as long as the write itself). A busy lock is retried every
``LOCK_POLL_SECONDS``, as ``FileLock`` does: a process writing in bursts then keeps it for
runs of writes instead of alternating with another on every write, each time reading the
other's file in full first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from filelock import lock_descriptor, unlock_descriptor

from reconciler.simulator.errors import SimulatorError
from reconciler.simulator.fileio import write_at, write_atomically

STATE_VERSION = 1
LOCK_POLL_SECONDS = 0.05
# A holder keeps the lock for one write (milliseconds); past this, something is stuck, and
# the request fails (500) rather than hangs.
LOCK_TIMEOUT_SECONDS = 30.0
APPEND_SLACK_BYTES = 64 * 1024
_HEADER = '{{"version": {version}, "revision": "{revision}", "accounts": {{\n'
_TRAILER = b"}}\n"
_HEADER_BYTES = 64
_REVISION = re.compile(rb'\A\{"version": 1, "revision": "([0-9a-f]{16})"')

T = TypeVar("T")


@dataclass(frozen=True)
class _Seen:
    """One version of the file as this process saw it; ``stat`` None: no file."""

    stat: tuple[int, int, int, int] | None
    revision: str | None


_ABSENT = _Seen(None, None)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class _Written:
    """The file as this process last wrote it (and has not read since): where to append."""

    size: int
    rewritten_size: int  # its size at its last rewrite: the bound on appends
    empty: bool  # no account line yet


class StateFile:
    """One state file, its lock and the version of it last seen.

    Not thread-safe: the store calls it under its own lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._lock_fd: int | None = None
        self._close_lock: Callable[[], None] = lambda: None
        self._seen: _Seen | None = None  # None: nothing known, the next check reads
        self._written: _Written | None = None  # None: the next write rewrites

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cross-process lock for the block (from the change check to the write).

        Raises :class:`TimeoutError` after ``LOCK_TIMEOUT_SECONDS`` of waiting.
        """
        if self._lock_fd is None:
            # Private like the state file: whoever can open the lock file can hold it.
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._lock_fd = fd
            self._close_lock = weakref.finalize(self, os.close, fd)
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while not lock_descriptor(self._lock_fd, blocking=False):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"simulator state file {self.path} stayed locked for {LOCK_TIMEOUT_SECONDS:g} s"
                )
            time.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            unlock_descriptor(self._lock_fd)

    def close(self) -> None:
        """Close the lock file (it stays on disk: removing it would race with a process
        about to open it). The next :meth:`locked` opens it again."""
        self._close_lock()
        self._lock_fd = None

    def forget(self) -> None:
        """Forget the version last seen: the next :meth:`changed` says True."""
        self._seen = None
        self._written = None

    def changed(self) -> bool:
        """Whether the file is not (or may not be) the version last read or written."""
        if self._seen is None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self._seen != _ABSENT
        try:
            key = _stat_key(os.fstat(fd))
            head = os.read(fd, _HEADER_BYTES)
        finally:
            os.close(fd)
        found = _REVISION.match(head)
        revision = found.group(1).decode("ascii") if found is not None else None
        # A file without a revision (an older simulator's, until a change here rewrites
        # it) is judged by its stat alone, rather than read again on every request.
        return _Seen(key, revision) != self._seen

    def read(self, parse: Callable[[Any, Path], T]) -> T | None:
        """The ``accounts`` value through ``parse``; None when there is no file.

        One open file is stat'ed and read, so what is remembered as seen is what was read
        (a rewrite replaces the file whole; an append only lengthens it, so this needs no
        lock). Nothing is remembered when the file is unreadable or ``parse`` raises.
        """
        self.forget()
        try:
            with self.path.open("rb") as handle:
                key = _stat_key(os.fstat(handle.fileno()))
                raw = handle.read()
        except FileNotFoundError:
            self._seen = _ABSENT
            return None
        except OSError as exc:
            raise SimulatorError(f"cannot read simulator state file {self.path}: {exc}") from None
        document = self._decode(raw)
        accounts = parse(document.get("accounts", {}), self.path)
        revision = document.get("revision")
        self._seen = _Seen(key, revision if isinstance(revision, str) else None)
        return accounts

    def save(self, changed: list[str], everything: Callable[[], list[str]]) -> None:
        """Persist a change: append the ``changed`` account lines (not empty) or, when an
        append is not allowed, :meth:`rewrite` the file from ``everything()``."""
        written, seen = self._written, self._seen
        self.forget()  # until the write is done, what the file holds is not known
        if written is not None and seen is not None:
            text = ("" if written.empty else ",") + "\n,".join(changed) + "\n"
            data = text.encode("utf-8") + _TRAILER
            start = written.size - len(_TRAILER)
            if start + len(data) <= 2 * written.rewritten_size + APPEND_SLACK_BYTES:
                st = write_at(self.path, start, data)
                self._seen = _Seen(_stat_key(st), seen.revision)
                self._written = _Written(st.st_size, written.rewritten_size, empty=False)
                return
        self.rewrite(everything())

    def rewrite(self, lines: list[str]) -> None:
        """Replace the file: ``lines`` (one per account), a new revision. Durable when this
        returns; on an error the file is the old one, and is forgotten all the same."""
        self.forget()
        revision = secrets.token_hex(8)
        body = "\n,".join(lines) + "\n" if lines else ""
        header = _HEADER.format(version=STATE_VERSION, revision=revision)
        write_atomically(self.path, header + body + _TRAILER.decode("ascii"))
        # Under the lock, the file at the path is the one just written; if it cannot be
        # stat'ed, it stays forgotten and the next check reads it back.
        with contextlib.suppress(OSError):
            st = os.stat(self.path)
            self._seen = _Seen(_stat_key(st), revision)
            self._written = _Written(st.st_size, st.st_size, empty=not lines)

    def _decode(self, raw: bytes) -> dict[str, Any]:
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            document = _without_torn_line(raw)
            if document is None:
                raise self._unreadable(exc) from None
        if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
            raise SimulatorError(
                f"simulator state file {self.path} is not a version {STATE_VERSION} state document"
            )
        return document

    def _unreadable(self, exc: UnicodeDecodeError | json.JSONDecodeError) -> SimulatorError:
        if isinstance(exc, UnicodeDecodeError):
            return SimulatorError(f"cannot read simulator state file {self.path}: {exc}")
        return SimulatorError(
            f"simulator state file {self.path} is not valid JSON (line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}); fix or delete it"
        )


def _without_torn_line(raw: bytes) -> Any:
    """The document without its last line, if that makes a whole one of this layout (an
    append cut short: never acknowledged); else None."""
    if not _REVISION.match(raw):
        return None
    cut = raw.rstrip(b"\n").rfind(b"\n") + 1
    if cut == 0:
        return None
    with contextlib.suppress(UnicodeDecodeError, json.JSONDecodeError):
        return json.loads((raw[:cut] + _TRAILER).decode("utf-8"))
    return None
