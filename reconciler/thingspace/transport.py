"""The wire under the client: retries, backoff, the in-flight bound, counters, errors.

Every request to ThingSpace goes through :meth:`Wire.send`: 429/5xx/connection
failures are retried with exponential backoff and full jitter (``Retry-After``
honoured, capped), at most ``parallelism`` requests are on the wire at once (and,
with a rate limit, at most that many attempts start per second), the
run's guard (deadline, circuit breaker, Ctrl-C) is asked before every attempt, and
error answers become typed errors with every known secret scrubbed out.
"""

from __future__ import annotations

import json as _json
import logging
import os
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.structures import CaseInsensitiveDict
from requests.utils import select_proxy

from reconciler import __version__
from reconciler.core.errors import ApiError, TransportError, UsageError
from reconciler.core.secrets import scrub
from reconciler.thingspace.diagnose import describe, host_port
from reconciler.thingspace.direct import DirectPool, bundle_problem, usable
from reconciler.thingspace.events import Attempted, Cause, Waiting, WireEvent, WireObserver
from reconciler.thingspace.guard import RunGuard
from reconciler.thingspace.options import ClientOptions
from reconciler.thingspace.ratelimit import RateLimiter

_MAX_TEXT = 200
_NON_PRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]+")

log = logging.getLogger(__name__)


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
class Sent:
    response: requests.Response
    ambiguous: bool  # an earlier attempt may have reached the server without a clear answer


class Wire:
    """Retries, backoff, the in-flight bound, the run's limits (:class:`RunGuard`),
    counters and error building, in one place."""

    def __init__(
        self,
        base: str,
        session: requests.Session,
        options: ClientOptions,
        *,
        sleep: Callable[[float], None] | None,
        rng: random.Random,
        secrets: Callable[[], list[str]],
        clock: Callable[[], float],
        stop: threading.Event | None = None,
        observer: WireObserver | None = None,
    ) -> None:
        """``observer`` hears every attempt and every wait before a retry (see
        :mod:`reconciler.thingspace.events`)."""
        self._base = base
        self._where = host_port(base)
        self._session = session
        self._options = options
        self._policy = options.retry
        self._rng = rng
        self._secrets = secrets
        self._slots = threading.BoundedSemaphore(options.parallelism)
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self.retries = 0
        self._clock = clock
        self._observer = observer
        self.guard = RunGuard(
            clock=clock,
            deadline=options.deadline,
            breaker_threshold=options.breaker_threshold,
            requests_sent=self.requests_sent,
            stop=stop,
        )
        # Backoff waits end early on Ctrl-C unless a test supplies its own sleep.
        self._sleep = sleep if sleep is not None else self.guard.stop.wait
        self._proxies, self._verify, self._cert = request_settings(session, base)
        verify = self._verify
        if base.startswith("https:") and isinstance(verify, str) and not os.path.exists(verify):
            raise UsageError(bundle_problem(verify))  # requests would stop, untyped, later
        self._proxied = select_proxy(base + "/", self._proxies) is not None
        self._base_path = urlsplit(base).path.rstrip("/")
        self._direct_pool: DirectPool | None = None
        self._limiter = RateLimiter(options.rate_limit, clock=clock) if options.rate_limit else None
        self._agent = f"tscallbacks/{__version__}"

    def requests_sent(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def send(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        auth: AuthBase,
        json: Any = None,
        content_type: str = "application/json",
        data: Any = None,
        attempts: int | None = None,
        extra_secrets: Iterable[str] = (),
        on_attempt: Callable[[], None] | None = None,
    ) -> Sent:
        """Send with retries; the first non-retryable answer is returned, whatever its status.

        Raises RunStopped, before sending, once the run's guard has tripped, and when this
        call's failure trips it. ``on_attempt`` hears each attempt just before it is sent.
        """
        limit = min(attempts or self._options.max_attempts, self._options.max_attempts)
        headers = {"Accept": "application/json", "User-Agent": self._agent}
        body: bytes | None = None
        if json is not None:
            headers["Content-Type"] = content_type
            body = _json.dumps(json, allow_nan=False).encode("utf-8")
        elif data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(data).encode("utf-8")
        ambiguous = False
        last: requests.Response | None = None
        reason = ""
        for attempt in range(1, limit + 1):
            if attempt > 1:
                with self._lock:
                    self.retries += 1
            final: str | None = None  # a failure no retry can mend
            failure: str | None = None  # a failure the breaker counts
            cause = Cause.RATE_LIMITED
            status: int | None = None
            started = self._clock()
            timeout = (self._options.connect_timeout, self._options.read_timeout)
            self.guard.check()  # not even waiting for a slot once the run has stopped
            try:
                with self._slots:  # held only while on the wire, never while backing off
                    self._pace(method, path)
                    timeout = self._timeouts(self.guard.check())
                    if on_attempt is not None:
                        on_attempt()
                    with self._lock:
                        self._counts[(method, kind)] += 1
                    started = self._clock()
                    response = self._request(method, path, headers, auth, body, timeout)
            except requests.exceptions.SSLError:
                final = f"TLS error with {self._where} (certificate or handshake)"
                self._attempted(method, path, kind, attempt, None, started, final)
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                ambiguous = True
                last = None
                reason = describe(exc, self._where, timeout)
                failure = f"{method} {path}: {reason}"
                cause = Cause.NO_ANSWER
                self._attempted(method, path, kind, attempt, None, started, reason)
                delay = self._policy.backoff(attempt, self._rng)
                log.debug("%s %s: %s (attempt %d/%d)", method, path, reason, attempt, limit)
            except requests.RequestException as exc:
                final = type(exc).__name__
            except ValueError:
                # e.g. UnicodeEncodeError: a header value (credentials, a token) that
                # HTTP cannot carry. The exception's text holds the value itself.
                final = "the request could not be encoded (non-Latin-1 credentials?)"
            else:
                status = response.status_code
                self._attempted(method, path, kind, attempt, status, started, None)
                if not self._policy.retryable(status):
                    self.guard.answered()
                    return Sent(response, ambiguous)
                ambiguous = ambiguous or status != 429
                last = response
                if status != 429:  # a rate limit is an answer, not a failure
                    failure = str(self.error(method, path, response, extra_secrets=extra_secrets))
                    cause = Cause.SERVER_ERROR
                delay = self._policy.delay(attempt, self._rng, response.headers.get("Retry-After"))
                log.debug("%s %s: HTTP %d (attempt %d/%d)", method, path, status, attempt, limit)
            # Raised outside the except blocks, so no chained exception (whose text may
            # hold a secret) travels with them.
            if final is not None:
                raise TransportError(method, path, final)
            if failure is not None:
                self.guard.failed(failure)
            if attempt < limit:
                self.guard.check_wait(delay, failure or f"{method} {path}: HTTP 429")
                why = reason if cause is Cause.NO_ANSWER else None
                self._emit(Waiting(method, path, kind, attempt, limit, delay, cause, status, why))
                self._sleep(delay)
        gave_up = f"gave up after {limit} attempt{'s' if limit != 1 else ''}"
        if last is not None:
            raise self.error(method, path, last, detail=gave_up, extra_secrets=extra_secrets)
        raise TransportError(method, path, f"{reason}; {gave_up}")

    def _pace(self, method: str, path: str) -> None:
        """With a rate limit, wait for this attempt's slot (a wire slot held: the rate,
        not the parallelism, is what binds then). Ctrl-C ends the wait; a wait past the
        run's deadline stops the run instead."""
        if self._limiter is None:
            return
        wait = self._limiter.reserve()
        if wait > 0:
            self.guard.check_wait(
                wait, f"{method} {path}: waiting for the rate limit", "for the rate limit"
            )
            self._sleep(wait)

    def _request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        auth: AuthBase,
        body: bytes | None,
        timeout: tuple[float, float],
    ) -> requests.Response:
        """One attempt: what ``Session.request`` would send, prepared by hand, without
        its per-request merging of settings (proxies and CA were resolved once, in
        :func:`request_settings`) and cookies (the API authenticates with headers)."""
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = self._base + path
        prepared.headers = CaseInsensitiveDict(headers)
        prepared.body = body
        prepared.hooks = {"response": []}
        if body is not None:
            prepared.headers["Content-Length"] = str(len(body))
        elif method not in ("GET", "HEAD"):
            prepared.headers["Content-Length"] = "0"
        prepared = auth(prepared)
        direct = self._direct(prepared)
        if direct is not None:  # no cookie is sent, nor any redirect followed
            return direct.send(prepared, self._base_path + path, timeout)
        prepared.prepare_cookies(None)  # none sent; a redirect's answer is read into it
        return self._session.send(
            prepared,
            stream=False,
            timeout=timeout,
            verify=self._verify,
            cert=self._cert,
            proxies=self._proxies,
            allow_redirects=False,
        )

    def _direct(self, prepared: requests.PreparedRequest) -> DirectPool | None:
        """The keep-alive connections to send on without ``Session.send``
        (:mod:`reconciler.thingspace.direct`), when the session is a plain one of
        requests, with its plain adapter, no proxy and no client certificate (a test's
        mock or a session of its own keeps the session's path)."""
        if (
            requests.Session.send is not _SESSION_SEND
            or type(self._session) is not requests.Session
            or self._proxied
        ):
            return None
        if self._direct_pool is not None:  # every request after the first: no lock
            return self._direct_pool
        with self._lock:
            if self._direct_pool is None:
                adapter = self._session.get_adapter(prepared.url or "")
                if type(adapter) is not HTTPAdapter or not usable(self._base, self._cert):
                    return None
                self._direct_pool = DirectPool(self._base, self._verify, self._options.parallelism)
            return self._direct_pool

    def close(self) -> None:
        """Close the direct path's idle connections (the session closes its own)."""
        with self._lock:
            pool, self._direct_pool = self._direct_pool, None
        if pool is not None:
            pool.close()

    def _attempted(
        self,
        method: str,
        path: str,
        kind: str,
        attempt: int,
        status: int | None,
        started: float,
        failure: str | None,
    ) -> None:
        seconds = max(0.0, self._clock() - started)
        self._emit(Attempted(method, path, kind, attempt, status, seconds, failure))

    def _emit(self, event: WireEvent) -> None:
        if self._observer is None:
            return
        try:
            self._observer(event)
        except Exception:  # watching must never break a run (a closed stderr, say)
            log.debug("the wire observer failed on %s", type(event).__name__, exc_info=True)

    def _timeouts(self, left: float | None) -> tuple[float, float]:
        """(connect, read) timeouts, never past the run's deadline."""
        read = self._options.read_timeout
        connect = min(self._options.connect_timeout, read)
        if left is None:
            return connect, read
        return min(connect, left), min(read, left)

    def error(
        self,
        method: str,
        path: str,
        response: requests.Response,
        *,
        detail: str | None = None,
        extra_secrets: Iterable[str] = (),
    ) -> ApiError:
        secrets = [*self._secrets(), *extra_secrets]
        code: str | None = None
        message: str | None = None
        notes = [detail] if detail else []
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = None
            text = _clip(response.text, secrets) if response.content.strip() else ""
            notes.append(f"non-JSON error body: {text}" if text else "empty error body")
        if isinstance(body, dict):
            # {errorCode, errorMessage} everywhere but Hyper Precise Location, whose SDK
            # exception reads {responseCode, message, fault} (thingspace-families.md §0).
            for code_key, message_key in _ERROR_KEYS:
                if code is None and isinstance(body.get(code_key), str):
                    code = _clip(body[code_key], secrets) or None
                if message is None and isinstance(body.get(message_key), str):
                    message = _clip(body[message_key], secrets) or None
        if body is not None and code is None and message is None:
            notes.append("no errorCode/errorMessage in the response")
        return ApiError(
            method, path, response.status_code, code, message, detail="; ".join(notes) or None
        )

    def snapshot(self, *, token_grants: int, logins: int, relogins: int) -> RequestStats:
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
            token_grants=token_grants,
            logins=logins,
            relogins=relogins,
        )


_SESSION_SEND = requests.Session.send  # as imported: a mock replaces it on the class


def environment_settings(endpoint: str) -> tuple[dict[str, str], bool | str]:
    """What requests takes from the environment for a request to ``endpoint``: the
    proxies (HTTPS_PROXY, ALL_PROXY..., none when NO_PROXY covers the host) and the CA
    bundle (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, else the default: True)."""
    proxies = requests.utils.get_environ_proxies(endpoint)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return dict(proxies), bundle or True


def request_settings(session: requests.Session, endpoint: str) -> tuple[dict[str, str], Any, Any]:
    """The proxies, CA verification and client certificate of every request to
    ``endpoint`` through ``session``: the session's, with the environment's on top when
    the session trusts it, as ``Session.request`` merges them, but once per run instead
    of on every request (reading the environment costs tens of microseconds a time, and
    every request of a run goes to the one endpoint)."""
    proxies, verify = dict(session.proxies), session.verify
    if session.trust_env:
        env_proxies, bundle = environment_settings(endpoint)
        proxies.update(env_proxies)
        if verify is True and bundle is not True:
            verify = bundle
    return proxies, verify, session.cert


_ERROR_KEYS = (("errorCode", "errorMessage"), ("responseCode", "message"))


def _clip(text: str, secrets: list[str]) -> str:
    """One short printable line of text from the API, with every secret masked (once,
    before anything is cut off). Secrets are looked for as sent and as the flattening
    into one line would have changed them (a tab inside a password, say)."""
    text = _one_line(text)
    text = scrub(text, [*secrets, *map(_one_line, secrets)])
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _one_line(text: str) -> str:
    return " ".join(_NON_PRINTABLE.sub(" ", text).split())
