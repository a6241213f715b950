"""The one HTTP client for the ThingSpace callback API (both families).

One ``requests.Session``, timeouts on every call, retries with backoff in one place
(:class:`_Wire`), authentication shared across threads (``reconciler.auth``), and
errors that name method and path but never carry a secret.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json as jsonlib
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from reconciler import __version__
from reconciler.auth import Authenticator, Tokens
from reconciler.credentials import Credentials
from reconciler.errors import ApiError, AuthError, TransportError, UsageError
from reconciler.model import SENSITIVE, Family, Registration

DEFAULT_ENDPOINT = "https://thingspace.verizon.com"

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
FAMILY_BASE: Mapping[Family, str] = MappingProxyType(
    {Family.M2M: "/api/m2m/v1/callbacks", Family.FOTA: "/api/fota/v1/callbacks"}
)
_SERVICE_FIELD: Mapping[Family, str] = MappingProxyType(
    {Family.M2M: "serviceName", Family.FOTA: "name"}
)
_MAX_TEXT = 200
_NON_PRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]+")

log = logging.getLogger(__name__)


def normalize_endpoint(url: str) -> str:
    """Validate a base URL: https required, except http to a loopback host (127.0.0.0/8, ::1,
    localhost), which the local simulator uses; no path other than '/', no query, no credentials.
    Returns it without a trailing slash. Raises UsageError with a one-line message otherwise."""
    if not url or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UsageError("invalid endpoint: empty or contains whitespace/control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(f"invalid endpoint {url!r}: not a valid URL") from None
    if "@" in parts.netloc:  # never echo the URL: the user info may hold a password
        raise UsageError("invalid endpoint: a user name or password in the URL is not allowed")
    host = (parts.hostname or "").lower()
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not host:
        raise UsageError(f"invalid endpoint {url!r}: expected https://HOST[:PORT]")
    if scheme == "http" and not _is_loopback(host):
        raise UsageError(
            f"invalid endpoint {url!r}: plain http is only allowed to a loopback host; use https"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise UsageError(f"invalid endpoint {url!r}: must not have a path, query or fragment")
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}" + (f":{port}" if port is not None else "")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def callbacks_path(family: Family, account: str, service: str | None = None) -> str:
    """The API path for an account's callbacks (or one service), names percent-encoded."""
    path = f"{FAMILY_BASE[family]}/{quote(account, safe='')}"
    return path if service is None else f"{path}/name/{quote(service, safe='')}"


@dataclass(frozen=True)
class ClientOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_attempts: int = 5  # per request, for retryable failures
    backoff_base: float = 0.5  # exponential backoff with full jitter
    backoff_max: float = 30.0
    retry_after_max: float = 120.0  # cap on an honoured Retry-After
    parallelism: int = 4  # max requests on the wire at once, across all threads

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.parallelism < 1:
            raise UsageError("max_attempts and parallelism must be at least 1")
        numbers = (self.connect_timeout, self.read_timeout, self.backoff_base, self.backoff_max)
        if min(numbers) <= 0 or self.retry_after_max < 0:
            raise UsageError("timeouts and backoff values must be positive")


@dataclass(frozen=True)
class RequestStats:
    """A snapshot of requests put on the wire (every attempt counts).

    ``kind`` is ``"auth"`` (token, login, logout) or ``"api"`` (callback calls).
    """

    by_method: Mapping[str, int]
    by_kind: Mapping[tuple[str, str], int]
    retries: int
    token_grants: int
    logins: int
    relogins: int

    def count(self, method: str | None = None, kind: str | None = None) -> int:
        return sum(
            n
            for (m, k), n in self.by_kind.items()
            if (method is None or m == method) and (kind is None or k == kind)
        )


@dataclass(frozen=True)
class _Sent:
    response: requests.Response
    ambiguous: bool  # an earlier attempt may have reached the server without a clear answer


class _Wire:
    """Retries, backoff, the in-flight bound, counters and error building, in one place."""

    def __init__(
        self,
        base: str,
        session: requests.Session,
        options: ClientOptions,
        *,
        sleep: Callable[[float], None],
        rng: random.Random,
        secrets: Callable[[], list[str]],
    ) -> None:
        self._base = base
        self._session = session
        self._options = options
        self._sleep = sleep
        self._rng = rng
        self._secrets = secrets
        self._slots = threading.BoundedSemaphore(options.parallelism)
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self.retries = 0

    def send(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        auth: AuthBase,
        json: Any = None,
        data: Any = None,
        attempts: int | None = None,
    ) -> requests.Response:
        return self.exchange(
            method, path, kind=kind, auth=auth, json=json, data=data, attempts=attempts
        ).response

    def exchange(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        auth: AuthBase,
        json: Any = None,
        data: Any = None,
        attempts: int | None = None,
        extra_secrets: Iterable[str] = (),
    ) -> _Sent:
        """Send with retries; the first non-retryable answer is returned, whatever its status."""
        limit = min(attempts or self._options.max_attempts, self._options.max_attempts)
        headers = {"Accept": "application/json", "User-Agent": f"tscallbacks/{__version__}"}
        if json is not None:
            headers["Content-Type"] = "application/json"
        ambiguous = False
        last: requests.Response | None = None
        reason = ""
        for attempt in range(1, limit + 1):
            if attempt > 1:
                with self._lock:
                    self.retries += 1
            try:
                with self._slots:  # held only while on the wire, never while backing off
                    with self._lock:
                        self._counts[(method, kind)] += 1
                    response = self._session.request(
                        method,
                        self._base + path,
                        headers=headers,
                        json=json,
                        data=data,
                        auth=auth,
                        timeout=(self._options.connect_timeout, self._options.read_timeout),
                        allow_redirects=False,
                    )
            except requests.exceptions.SSLError:
                raise TransportError(method, path, "TLS error (certificate or handshake)") from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                ambiguous = True
                last = None
                reason = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                delay = self._backoff(attempt)
                log.debug("%s %s: %s (attempt %d/%d)", method, path, reason, attempt, limit)
            except requests.RequestException as exc:
                raise TransportError(method, path, type(exc).__name__) from None
            else:
                if response.status_code not in RETRYABLE_STATUSES:
                    return _Sent(response, ambiguous)
                ambiguous = ambiguous or response.status_code != 429
                last = response
                after = _retry_after(response.headers.get("Retry-After"))
                delay = (
                    min(after, self._options.retry_after_max)
                    if after is not None
                    else self._backoff(attempt)
                )
                log.debug(
                    "%s %s: HTTP %d (attempt %d/%d)",
                    method,
                    path,
                    response.status_code,
                    attempt,
                    limit,
                )
            if attempt < limit:
                self._sleep(delay)
        gave_up = f"gave up after {limit} attempt{'s' if limit != 1 else ''}"
        if last is not None:
            raise self.error(method, path, last, detail=gave_up, extra_secrets=extra_secrets)
        raise TransportError(method, path, f"{reason}; {gave_up}")

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._options.backoff_max, self._options.backoff_base * 2 ** (attempt - 1))
        return self._rng.uniform(0.0, ceiling)

    def error(
        self,
        method: str,
        path: str,
        response: requests.Response,
        *,
        cls: type[ApiError] = ApiError,
        detail: str | None = None,
        extra_secrets: Iterable[str] = (),
    ) -> ApiError:
        secrets = sorted({*self._secrets(), *extra_secrets} - {""}, key=len, reverse=True)
        code: str | None = None
        message: str | None = None
        notes = [detail] if detail else []
        try:
            body = response.json()
        except ValueError:
            body = None
            text = _clip(response.text, secrets) if response.content.strip() else ""
            notes.append(f"non-JSON error body: {text}" if text else "empty error body")
        if isinstance(body, dict):
            if isinstance(body.get("errorCode"), str):
                code = _clip(body["errorCode"], secrets) or None
            if isinstance(body.get("errorMessage"), str):
                message = _clip(body["errorMessage"], secrets) or None
        if body is not None and code is None and message is None:
            notes.append("no errorCode/errorMessage in the response")
        return cls(
            method, path, response.status_code, code, message, detail="; ".join(notes) or None
        )

    def snapshot(self, auth: Authenticator) -> RequestStats:
        with self._lock:
            by_kind = dict(self._counts)
            retries = self.retries
        by_method: Counter[str] = Counter()
        for (method, _kind), n in by_kind.items():
            by_method[method] += n
        return RequestStats(
            by_method=MappingProxyType(dict(by_method)),
            by_kind=MappingProxyType(by_kind),
            retries=retries,
            token_grants=auth.token_grants,
            logins=auth.logins,
            relogins=auth.relogins,
        )


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, SENSITIVE)
    return text


def _clip(text: str, secrets: list[str]) -> str:
    """One short printable line with every secret replaced (before anything is cut off)."""
    text = _scrub(text, secrets)
    text = " ".join(_NON_PRINTABLE.sub(" ", text).split())
    text = _scrub(text, secrets)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class ThingSpaceClient:
    """Lists, registers and deregisters callback listeners; safe to share across threads."""

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        *,
        options: ClientOptions = ClientOptions(),
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = normalize_endpoint(endpoint)
        self.options = options
        self._credentials = credentials
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_maxsize=max(10, options.parallelism))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        self._wire = _Wire(
            self.endpoint,
            session,
            options,
            sleep=sleep,
            rng=rng if rng is not None else random.Random(),
            secrets=self.secrets,
        )
        self._auth = Authenticator(self._wire, credentials, clock=clock)

    def __repr__(self) -> str:
        return f"ThingSpaceClient({self.endpoint!r})"

    def __enter__(self) -> ThingSpaceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- callback calls -----------------------------------------------------------------

    def list_callbacks(self, account: str, family: Family) -> list[dict[str, Any]]:
        """The raw items registered for ``account`` in ``family``; FOTA's empty body is []."""
        path = callbacks_path(family, account)
        response = self._call("GET", path).response
        if not 200 <= response.status_code < 300:
            raise self._wire.error("GET", path, response)
        return _parse_list(path, response, family)

    def register(
        self, account: str, family: Family, service: str, registration: Registration
    ) -> None:
        """Register (or, as the API is assumed to, replace) one listener.

        FOTA takes no username/password, so none are sent for it.
        """
        path = callbacks_path(family, account)
        body: dict[str, str] = {"name": service, "url": registration.url}
        secrets: list[str] = []
        if family is Family.M2M:
            if registration.username:
                body["username"] = registration.username
            if registration.password is not None and registration.password.reveal():
                body["password"] = registration.password.reveal()
                secrets.append(body["password"])
        response = self._call("POST", path, json=body, extra_secrets=secrets).response
        if not 200 <= response.status_code < 300:
            raise self._wire.error("POST", path, response, extra_secrets=secrets)

    def deregister(self, account: str, family: Family, service: str) -> None:
        """Remove one listener. When an earlier attempt got no clear answer and a later one
        says "not registered", a list call decides whether the first one took effect."""
        path = callbacks_path(family, account, service)
        sent = self._call("DELETE", path)
        status = sent.response.status_code
        if 200 <= status < 300:
            return
        if sent.ambiguous and status in (400, 404):
            field = _SERVICE_FIELD[family]
            items = self.list_callbacks(account, family)
            if not any(item.get(field) == service for item in items):
                return
        raise self._wire.error("DELETE", path, sent.response)

    # -- session ------------------------------------------------------------------------

    def close(self) -> None:
        """Best-effort logout of the M2M session if one is open; never raises."""
        # Closing runs in finally blocks: it must never mask the caller's outcome.
        with contextlib.suppress(Exception):
            self._auth.close()
        if self._owns_session:
            with contextlib.suppress(Exception):
                self._session.close()

    def stats(self) -> RequestStats:
        return self._wire.snapshot(self._auth)

    def secrets(self) -> list[str]:
        """Every secret the client knows (credentials, the Basic header, tokens so far)."""
        creds = self._credentials
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        return [*creds.secrets(), basic, *self._auth.secrets()]

    def _call(
        self, method: str, path: str, *, json: Any = None, extra_secrets: Iterable[str] = ()
    ) -> _Sent:
        """One API call with the shared tokens; a 401 re-authenticates once and retries once."""
        tokens: Tokens = self._auth.current()
        sent = self._wire.exchange(
            method, path, kind="api", auth=tokens.auth(), json=json, extra_secrets=extra_secrets
        )
        if sent.response.status_code != 401:
            return sent
        tokens = self._auth.renew(tokens)
        again = self._wire.exchange(
            method, path, kind="api", auth=tokens.auth(), json=json, extra_secrets=extra_secrets
        )
        if again.response.status_code == 401:
            raise self._wire.error(
                method,
                path,
                again.response,
                cls=AuthError,
                detail="refused again after a fresh login",
                extra_secrets=extra_secrets,
            )
        return _Sent(again.response, sent.ambiguous or again.ambiguous)


def _unexpected(path: str, status: int, what: str) -> ApiError:
    return ApiError("GET", path, status, detail=f"unexpected response: {what}")


def _parse_list(path: str, response: requests.Response, family: Family) -> list[dict[str, Any]]:
    content = response.content
    if family is Family.FOTA and content.strip() in (b"", b"null"):
        return []  # FOTA answers an empty body, not [], when nothing is registered
    try:
        body = jsonlib.loads(content)
    except ValueError:
        raise _unexpected(path, response.status_code, "body is not JSON") from None
    if not isinstance(body, list):
        raise _unexpected(path, response.status_code, "expected a JSON array")
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise _unexpected(path, response.status_code, f"item {index} is not an object")
    return body
