"""The simulator's state: registrations (persisted), auth sessions and the request log.

The state file is JSON, written atomically after every change::

    {"version": 1,
     "accounts": {"0252012345-00001": {"DeviceUsage": {"url": "...", "username": "...",
                                                       "password": "..."}}}}

``username``/``password`` (and ``httpHeaders``, an object of strings, for families that
take it) appear only when set. The file holds callback passwords in clear (it is a
simulator), so it is created private (0600) and never logged. Tokens, sessions and
lockouts live in memory only.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from reconciler.simulator.credentials import ClientCredentials
from reconciler.simulator.errors import SimulatorError
from reconciler.simulator.fileio import write_atomically

STATE_VERSION = 1
MAX_FAILED_LOGINS = 5
REQUEST_LOG_LIMIT = 10_000  # a long-running server must not grow without bound


@dataclass(frozen=True)
class StoredCallback:
    """One registration as the simulator keeps it. ``repr`` hides the password and the
    headers (a listener's headers may well carry its credentials)."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    http_headers: Mapping[str, str] | None = field(default=None, repr=False)

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
        return data


class RegistrationStore:
    """Registrations per account and service; every change is persisted before it counts."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._accounts: dict[str, dict[str, StoredCallback]] = {}
        if path is not None and not path.parent.is_dir():
            raise SimulatorError(f"simulator state directory {path.parent} does not exist")
        if path is not None and path.exists():
            self._accounts = _load(path)

    @property
    def path(self) -> Path | None:
        return self._path

    def registrations(self, account: str) -> list[tuple[str, StoredCallback]]:
        """(service, registration) pairs of one account, in registration order."""
        with self._lock:
            return list(self._accounts.get(account, {}).items())

    def put(self, account: str, service: str, callback: StoredCallback) -> None:
        """Register, replacing any registration of the same service."""
        with self._lock:
            updated = _copy(self._accounts)
            updated.setdefault(account, {})[service] = callback
            self._commit(updated)

    def replace(self, account: str, service: str, callback: StoredCallback) -> bool:
        """Replace an existing registration; False (nothing written) when there is none."""
        with self._lock:
            if service not in self._accounts.get(account, {}):
                return False
            updated = _copy(self._accounts)
            updated[account][service] = callback
            self._commit(updated)
            return True

    def remove(self, account: str, service: str) -> StoredCallback | None:
        """Deregister; returns what was removed, or None when it was not registered."""
        with self._lock:
            current = self._accounts.get(account, {}).get(service)
            if current is None:
                return None
            updated = _copy(self._accounts)
            del updated[account][service]
            if not updated[account]:
                del updated[account]
            self._commit(updated)
            return current

    def clear(self) -> None:
        with self._lock:
            self._commit({})

    def snapshot(self) -> dict[str, Any]:
        """Everything, in the state file's shape (a fresh copy)."""
        with self._lock:
            return _to_document(self._accounts)

    def _commit(self, accounts: dict[str, dict[str, StoredCallback]]) -> None:
        # Write first: if the disk refuses, memory must not claim a change the file lacks.
        if self._path is not None:
            write_atomically(self._path, json.dumps(_to_document(accounts), indent=2) + "\n")
        self._accounts = accounts


def _copy(accounts: dict[str, dict[str, StoredCallback]]) -> dict[str, dict[str, StoredCallback]]:
    return {name: dict(services) for name, services in accounts.items()}


def _to_document(accounts: dict[str, dict[str, StoredCallback]]) -> dict[str, Any]:
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


def _load(path: Path) -> dict[str, dict[str, StoredCallback]]:
    """Read a state file; anything unreadable is a one-line :class:`SimulatorError`."""
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulatorError(f"cannot read simulator state file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SimulatorError(
            f"simulator state file {path} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); fix or delete it"
        ) from None
    if not isinstance(document, dict) or document.get("version") != STATE_VERSION:
        raise SimulatorError(
            f"simulator state file {path} is not a version {STATE_VERSION} state document"
        )
    raw_accounts = document.get("accounts", {})
    if not isinstance(raw_accounts, dict):
        raise SimulatorError(f"simulator state file {path}: 'accounts' must be an object")
    accounts: dict[str, dict[str, StoredCallback]] = {}
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
                or not all(isinstance(entry.get(k, ""), str) for k in ("username", "password"))
                or not is_string_map(entry.get("httpHeaders", {}))
            ):
                raise SimulatorError(
                    f"simulator state file {path}: {account!r}/{service!r} needs a string 'url' "
                    "and optional string 'username'/'password' and 'httpHeaders' object"
                )
            loaded[service] = StoredCallback(
                url=entry["url"],
                username=entry.get("username") or None,
                password=entry.get("password") or None,
                http_headers=entry.get("httpHeaders") or None,
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


class RequestLog:
    """A bounded, thread-safe log of ``/api`` calls (the newest ``REQUEST_LOG_LIMIT``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_LIMIT)

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
