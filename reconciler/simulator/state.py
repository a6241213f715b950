"""The simulator's state: registrations (persisted), auth sessions and the request log.

Registrations may be persisted in a JSON state file, one account a line::

    {"version": 1, "revision": "3f09c2d4a1b7e865", "accounts": {
    "0252012345-00001": {"DeviceUsage": {"url": "...", "username": "...", "password": "..."}}
    ,"0252012345-00002": {"QoS": {"url": "..."}}
    }}

``username``/``password`` (and ``httpHeaders``, an object of strings, and ``createdOn``,
an RFC 3339 time, for families that have them) appear only when set. A family with
free-form service names keeps them under its own prefix ("HPL:BullseyeReporting"); see
:mod:`reconciler.simulator.families`. The file holds callback passwords in clear (it is a
simulator), so it is created private (0600) and never logged. Tokens, sessions and
lockouts live in memory only.

Several processes may share one state file (two ``--simulator`` runs in one directory, a
``simulator serve`` beside them) and lose nothing of each other's writes, every
acknowledged write is on disk, and a write costs about the same however big the file is:

- A change is applied under a cross-process lock, to the file's current content: if
  another process wrote since this one last read or wrote (a cheap check, no parsing), the
  file is read again first. Reads check too, so a list shows what another process did.
- The file is its own write-ahead log: a change appends a line per account it changed,
  holding all that account's registrations (the last line of an account counts, as
  ``json.load`` reads it), fsync'ed in place. When the file has doubled since it was last
  rewritten, a change rewrites it whole and compacted instead (temporary file, fsync,
  rename, directory fsync), so writes cost amortized O(accounts changed), not O(file).
  Layout, change check and appends cut short: :mod:`reconciler.simulator.statefile`.
- Group commit: a writer queues its change; whichever writer gets the store's lock next
  applies every queued change and writes them all with one fsync, and each waits for the
  write holding its change. A change is acknowledged only once it is on disk. If the
  write fails, the store forgets which version of the file it holds, so its next access
  reads the file again: memory never shows a change the file lacks.

Files older simulators wrote (indented, no revision) load; the first change rewrites them.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

from reconciler.simulator.credentials import ClientCredentials
from reconciler.simulator.errors import SimulatorError
from reconciler.simulator.statefile import STATE_VERSION, StateFile

MAX_FAILED_LOGINS = 5
REQUEST_LOG_LIMIT = 10_000  # a long-running server must not grow without bound

T = TypeVar("T")
Accounts = dict[str, dict[str, "StoredCallback"]]


@dataclass(frozen=True)
class StoredCallback:
    """One registration as the simulator keeps it. ``repr`` hides the password and the
    headers (a listener's headers may well carry its credentials)."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    http_headers: Mapping[str, str] | None = field(default=None, repr=False)
    created_on: str | None = None  # RFC 3339, for families that answer it

    def __post_init__(self) -> None:
        if self.http_headers is not None:  # a read-only copy, so the value stays frozen
            object.__setattr__(self, "http_headers", MappingProxyType(dict(self.http_headers)))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"url": self.url}
        if self.username:
            data["username"] = self.username
        if self.password:
            data["password"] = self.password
        if self.http_headers:
            data["httpHeaders"] = dict(self.http_headers)
        if self.created_on:
            data["createdOn"] = self.created_on
        return data


class StateFileError(RuntimeError):
    """The state file turned unreadable while serving (a 500, not the client's mistake)."""


class _Change(Generic[T]):
    """A queued change: applied to the store's memory by whichever writer commits it."""

    def __init__(self, apply: Callable[[], T]) -> None:
        self.apply = apply
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class RegistrationStore:
    """Registrations per account and service; every change is persisted before it counts."""

    def __init__(self, path: Path | None = None) -> None:
        if path is not None and not path.parent.is_dir():
            raise SimulatorError(f"simulator state directory {path.parent} does not exist")
        self._file = StateFile(path) if path is not None else None
        self._lock = threading.Lock()  # memory, the file, and one commit at a time
        self._queue_lock = threading.Lock()
        self._queue: list[_Change[Any]] = []
        self._accounts: Accounts = {}
        # Each account's registrations as JSON, once rendered (until the account changes).
        self._json: dict[str, str] = {}
        self._changed: dict[str, None] = {}  # accounts the commit under way changed, in order
        if self._file is not None:
            self._accounts = self._file.read(_parse_accounts) or {}

    @property
    def path(self) -> Path | None:
        return self._file.path if self._file is not None else None

    def registrations(self, account: str) -> list[tuple[str, StoredCallback]]:
        """(service, registration) pairs of one account, in registration order."""
        with self._lock:
            self._refresh()
            return list(self._accounts.get(account, {}).items())

    def put(self, account: str, service: str, callback: StoredCallback) -> None:
        """Register, replacing any registration of the same service."""

        def change() -> None:
            self._changing(account)[service] = callback

        self._commit(change)

    def replace(self, account: str, service: str, callback: StoredCallback) -> bool:
        """Replace an existing registration; False (nothing written) when there is none."""

        def change() -> bool:
            if service not in self._accounts.get(account, {}):
                return False
            self._changing(account)[service] = callback
            return True

        return self._commit(change)

    def remove(self, account: str, service: str) -> StoredCallback | None:
        """Deregister; returns what was removed, or None when it was not registered."""

        def change() -> StoredCallback | None:
            current = self._accounts.get(account, {}).get(service)
            if current is not None:
                services = self._changing(account)
                del services[service]
                if not services:
                    del self._accounts[account]
            return current

        return self._commit(change)

    def clear(self) -> None:
        def change() -> None:
            for account in list(self._accounts):
                self._changing(account)
            self._accounts.clear()

        self._commit(change)

    def snapshot(self) -> dict[str, Any]:
        """Everything, in the state file's shape without its revision (a fresh copy)."""
        with self._lock:
            self._refresh()
            return _to_document(self._accounts)

    def close(self) -> None:
        """Let go of the state file's lock file (a later change opens it again)."""
        with self._lock:
            if self._file is not None:
                self._file.close()

    # --- group commit ---------------------------------------------------------------------

    def _commit(self, apply: Callable[[], T]) -> T:
        """Queue a change; return its result once a write holding it is durable."""
        change = _Change(apply)
        with self._queue_lock:
            self._queue.append(change)
        with self._lock:
            if not change.done:  # no other writer took it along: commit the queue
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(batch)
        if change.error is not None:
            raise change.error
        return cast(T, change.result)

    def _write(self, batch: list[_Change[Any]]) -> None:
        self._changed.clear()
        try:
            if self._file is None:
                self._apply(batch)
            else:
                with self._file.locked():
                    self._refresh()
                    self._apply(batch)
                    self._save(self._file)
        except BaseException as exc:  # every change of the batch failed
            if self._file is not None:
                # Memory may hold changes the file lacks: the next access reads the file.
                self._file.forget()
            for change in batch:
                change.error = exc
        finally:
            for change in batch:
                change.done = True

    def _apply(self, batch: list[_Change[Any]]) -> None:
        for change in batch:
            change.result = change.apply()

    def _save(self, file: StateFile) -> None:
        """Write what the commit changed: the lines of the accounts it changed."""
        if not self._changed:
            return
        if not self._accounts:  # nothing left: an empty file rather than lines of {}
            file.rewrite([])
            return
        file.save(
            [self._line(account) for account in self._changed],
            lambda: [self._line(account) for account in self._accounts],
        )

    def _changing(self, account: str) -> dict[str, StoredCallback]:
        """The account's registrations, to change (its line is written again)."""
        self._changed[account] = None
        self._json.pop(account, None)
        return self._accounts.setdefault(account, {})

    def _refresh(self) -> None:
        """Read the file again if another process wrote it since this one last did."""
        if self._file is None or not self._file.changed():
            return
        try:
            accounts = self._file.read(_parse_accounts) or {}
        except SimulatorError as exc:
            raise StateFileError(str(exc)) from None
        self._accounts = accounts
        self._json.clear()

    def _line(self, account: str) -> str:
        """The state file's line for ``account``: all its registrations (``{}``: none)."""
        text = self._json.get(account)
        if text is None:
            services = self._accounts.get(account, {})
            text = json.dumps({service: cb.to_dict() for service, cb in services.items()})
            if services:
                self._json[account] = text
        return f"{json.dumps(account)}: {text}"


def _to_document(accounts: Accounts) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "accounts": {
            name: {service: cb.to_dict() for service, cb in services.items()}
            for name, services in accounts.items()
        },
    }


def is_string_map(value: Any) -> bool:
    """Whether ``value`` is a JSON object whose values are all strings (HTTP headers)."""
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _parse_accounts(raw_accounts: Any, path: Path) -> Accounts:
    """The state file's ``accounts``; anything malformed is a one-line :class:`SimulatorError`."""
    if not isinstance(raw_accounts, dict):
        raise SimulatorError(f"simulator state file {path}: 'accounts' must be an object")
    accounts: Accounts = {}
    for account, services in raw_accounts.items():
        if not isinstance(services, dict):
            raise SimulatorError(
                f"simulator state file {path}: account {account!r} must be an object"
            )
        loaded: dict[str, StoredCallback] = {}
        for service, entry in services.items():
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("url"), str)
                or not all(
                    isinstance(entry.get(k, ""), str) for k in ("username", "password", "createdOn")
                )
                or not is_string_map(entry.get("httpHeaders", {}))
            ):
                raise SimulatorError(
                    f"simulator state file {path}: {account!r}/{service!r} needs a string 'url' "
                    "and optional string 'username'/'password'/'createdOn' and 'httpHeaders' object"
                )
            loaded[service] = StoredCallback(
                url=entry["url"],
                username=entry.get("username") or None,
                password=entry.get("password") or None,
                http_headers=entry.get("httpHeaders") or None,
                created_on=entry.get("createdOn") or None,
            )
        if loaded:
            accounts[account] = loaded
    return accounts


class LoginOutcome(Enum):
    OK = "ok"
    BAD_CREDENTIALS = "bad_credentials"
    LOCKED = "locked"


class AuthState:
    """OAuth tokens, M2M sessions and login lockouts (memory only, thread-safe).

    Tokens expire ``token_ttl`` seconds after issue; sessions ``session_idle`` seconds
    after their last valid use. ``MAX_FAILED_LOGINS`` consecutive bad logins lock a user
    until :meth:`reset`; a good login before that resets the count.
    """

    def __init__(
        self,
        credentials: ClientCredentials,
        *,
        token_ttl: float,
        session_idle: float,
        clock: Callable[[], float],
    ) -> None:
        self._credentials = credentials
        self._token_ttl = token_ttl
        self._session_idle = session_idle
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token -> expiry time
        self._sessions: dict[str, float] = {}  # session token -> last use
        self._failures: dict[str, int] = {}  # username -> consecutive failed logins

    def issue_token(self, client_id: str, client_secret: str) -> str | None:
        """A new bearer token for the right client credentials, else None."""
        if not (
            _same(client_id, self._credentials.client_id)
            and _same(client_secret, self._credentials.client_secret)
        ):
            return None
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + self._token_ttl
        return token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
            if expiry is None:
                return False
            if expiry <= self._clock():
                del self._tokens[token]
                return False
            return True

    def login(self, username: str, password: str) -> tuple[LoginOutcome, str | None]:
        """Check a login; on success returns a new session token."""
        with self._lock:
            if self._failures.get(username, 0) >= MAX_FAILED_LOGINS:
                return LoginOutcome.LOCKED, None
            known_user = _same(username, self._credentials.username)
            if not (known_user and _same(password, self._credentials.password)):
                if known_user:  # only a real user can be locked: unknown names grow nothing
                    self._failures[username] = self._failures.get(username, 0) + 1
                return LoginOutcome.BAD_CREDENTIALS, None
            self._failures.pop(username, None)
            now = self._clock()
            self._sessions = {
                s: used for s, used in self._sessions.items() if now - used < self._session_idle
            }
            session = secrets.token_urlsafe(32)
            self._sessions[session] = now
            return LoginOutcome.OK, session

    def touch_session(self, session: str) -> bool:
        """True if the session is live; a valid use restarts its idle timer."""
        with self._lock:
            last = self._sessions.get(session)
            if last is None:
                return False
            now = self._clock()
            if now - last >= self._session_idle:
                del self._sessions[session]
                return False
            self._sessions[session] = now
            return True

    def logout(self, session: str) -> None:
        with self._lock:
            self._sessions.pop(session, None)

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def reset(self) -> None:
        """Forget sessions and lockouts (tokens stay valid: they are the client's OAuth)."""
        with self._lock:
            self._sessions.clear()
            self._failures.clear()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@dataclass(frozen=True)
class RequestRecord:
    """One ``/api`` call as logged: never headers or bodies. ``status`` None = dropped."""

    method: str
    path: str
    status: int | None
    account: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "account": self.account,
        }


@dataclass(frozen=True)
class RequestCounts:
    """Every ``/api`` call since the last clear, however many (the log keeps only the
    newest): per method and route (``/api/m2m/v1/callbacks/{account}``, say), and when
    the first and the last arrived (monotonic seconds; None before any)."""

    by_route: Mapping[tuple[str, str], int]
    first: float | None
    last: float | None

    @property
    def total(self) -> int:
        return sum(self.by_route.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_route": [
                {"method": method, "route": path, "count": n}
                for (method, path), n in sorted(self.by_route.items())
            ],
            "first": self.first,
            "last": self.last,
        }


class RequestLog:
    """A bounded, thread-safe log of ``/api`` calls (the newest ``REQUEST_LOG_LIMIT``),
    and uncapped counts of every call (:class:`RequestCounts`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._counts: dict[tuple[str, str], int] = {}
        self._clock = clock
        self._first: float | None = None
        self._last: float | None = None

    def add(self, record: RequestRecord, route: str | None = None) -> None:
        """Log ``record``; count it under ``route`` (its path when None)."""
        key = (record.method, route or record.path)
        now = self._clock()
        with self._lock:
            self._records.append(record)
            self._counts[key] = self._counts.get(key, 0) + 1
            if self._first is None:
                self._first = now
            self._last = now

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def counts(self) -> RequestCounts:
        with self._lock:
            return RequestCounts(MappingProxyType(dict(self._counts)), self._first, self._last)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._counts.clear()
            self._first = self._last = None
