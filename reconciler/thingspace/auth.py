"""ThingSpace authentication: one OAuth2 bearer plus one M2M session, shared by all threads.

Five consecutive refused M2M logins lock the ThingSpace user until Verizon support
unlocks it. So the :class:`Authenticator` logs in once under a lock (threads that
waited reuse the result), never retries a login refused for credentials, keeps every
run within a budget of LOGIN_ATTEMPTS login POSTs, and remembers any failure to get
tokens: every later call fails at once without touching the network. Retrying logins
that failed on 429/5xx/network errors is the wire's job, like any call (within budget).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from reconciler.core.errors import ApiError, AuthError, TscError
from reconciler.thingspace.credentials import Credentials

if TYPE_CHECKING:
    from reconciler.thingspace.transport import Wire

TOKEN_PATH = "/api/ts/v1/oauth2/token"
LOGIN_PATH = "/api/m2m/v1/session/login"
LOGOUT_PATH = "/api/m2m/v1/session/logout"

DEFAULT_EXPIRES_IN = 3600.0
_NO_TOKEN = "unexpected response: no access_token"
_NO_SESSION = "unexpected response: no sessionToken"
RENEW_MARGIN = 60.0  # renew the bearer this long before it expires (less for short lifetimes)
# A login that timed out may still have counted as a failure on Verizon's side, and
# five failures lock the user: at most this many POSTs to the login path per run,
# counting retries and the logins that renew an expired session.
LOGIN_ATTEMPTS = 3
# An expired session is renewed (a new login) at most this many times per run.
MAX_SESSION_RENEWALS = 2


class TokenAuth(AuthBase):
    """Sets ``Authorization: Bearer`` and, once logged in, ``VZ-M2M-Token``."""

    def __init__(self, bearer: str, session: str | None = None) -> None:
        self._bearer = bearer
        self._session = session

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._bearer}"
        if self._session is not None:
            r.headers["VZ-M2M-Token"] = self._session
        return r

    def __repr__(self) -> str:
        return "TokenAuth(<hidden>)"


@dataclass(frozen=True)
class Tokens:
    """The pair every API call sends.

    ``generation`` counts session logins: a 401 answered to tokens of an older
    generation means another thread has already logged in again.
    """

    generation: int
    bearer: str = field(repr=False)
    session: str = field(repr=False)

    def auth(self) -> TokenAuth:
        return TokenAuth(self.bearer, self.session)


def _status_ok(response: requests.Response) -> bool:
    return 200 <= response.status_code < 300


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


class Authenticator:
    """Holds the shared tokens; every method is safe to call from any thread.

    Single flight: one thread at a time obtains a bearer or logs in, under a lock; the
    threads that waited reuse its result. A failure is remembered for the run (the
    others get the same error without sending anything). Logins have a budget for the
    whole run: at most LOGIN_ATTEMPTS POSTs to the login path, counting every retry and
    every renewal; the session is renewed at most MAX_SESSION_RENEWALS times.
    """

    def __init__(self, wire: Wire, credentials: Credentials, *, clock: Callable[[], float]) -> None:
        self._wire = wire
        self._credentials = credentials
        self._clock = clock
        self._lock = threading.Lock()
        self._failure: TscError | None = None
        self._bearer: str | None = None
        self._bearer_renew_at = 0.0
        self._session: str | None = None
        self._generation = 0
        self._renewed_generation = -1  # the generation the last 401-driven re-login made
        self._proven_lock = threading.Lock()
        self._proven_generation = 0  # the newest generation an API call was answered with
        self._seen: list[str] = []  # every token ever obtained, for redaction
        self._seen_lock = threading.Lock()
        self.token_grants = 0
        self.logins = 0
        self.relogins = 0
        self.login_attempts = 0  # POSTs to the login path, for the run's budget

    # -- public -----------------------------------------------------------------------

    def current(self) -> Tokens:
        """Valid tokens, logging in (once, shared) or renewing the bearer when needed."""
        self._raise_if_failed()
        with self._lock:
            self._raise_if_failed()
            return self._ensure_or_fail()

    def confirm(self, tokens: Tokens) -> None:
        """An API call with ``tokens`` got an answer other than 401: the session works.
        A later 401 to it means it expired (renew), not that it is refused."""
        with self._proven_lock:
            self._proven_generation = max(self._proven_generation, tokens.generation)

    def renew(self, stale: Tokens, refusal: Callable[[str], ApiError]) -> Tokens:
        """After a 401 with ``stale``: renew what is stale, unless another thread already did.

        A bearer renewed since, or due for renewal, is the likely culprit: only the bearer
        is renewed. Otherwise the session is replaced by a new login.

        The run stops (an AuthError built by ``refusal(why)``, remembered) when ``stale``
        came from a renewal and no call has worked with it yet: a 401 that persists after
        a fresh login is no expired session, and logging in again would only pile up
        logins. It stops too when the session has already been renewed
        MAX_SESSION_RENEWALS times in this run.
        """
        self._raise_if_failed()
        with self._lock:
            self._raise_if_failed()
            if self._session is not None and self._generation != stale.generation:
                return self._ensure_or_fail()
            if self._session is not None and stale.bearer != self._bearer:
                return self._ensure_or_fail()  # the bearer was renewed since: try the new one
            if self._session is not None and self._clock() >= self._bearer_renew_at:
                # The bearer is due (a retry slept past its renewal): renew it alone and
                # keep the session; if the 401 was the session's, the next renew logs in.
                self._bearer = None
                return self._ensure_or_fail()
            if stale.generation == self._renewed_generation and not self._proven(stale):
                self._fail(
                    refusal(
                        "refused again right after a new login; the run stops: check the "
                        "user's permissions for this account"
                    )
                )
            if self.relogins >= MAX_SESSION_RENEWALS:
                self._fail(
                    refusal(
                        f"the session expired again; it is renewed at most "
                        f"{MAX_SESSION_RENEWALS} times per run, so the run stops"
                    )
                )
            self._bearer = None
            self._session = None
            self.relogins += 1
            tokens = self._ensure_or_fail()
            self._renewed_generation = tokens.generation
            return tokens

    def close(self) -> None:
        """Best-effort logout of the M2M session; never raises."""
        with self._lock:
            bearer, session = self._bearer, self._session
            self._session = None
            self._generation += 1
        if bearer is None or session is None:
            return
        # Logout is a courtesy (the session expires by itself), so nothing may escape.
        with contextlib.suppress(Exception):
            self._wire.send(
                "POST", LOGOUT_PATH, kind="auth", auth=TokenAuth(bearer, session), attempts=1
            )

    def secrets(self) -> list[str]:
        # Its own lock: error building calls this while a login holds ``_lock``.
        with self._seen_lock:
            return list(self._seen)

    # -- internals (called with the lock held) ------------------------------------------

    def _proven(self, tokens: Tokens) -> bool:
        with self._proven_lock:
            return self._proven_generation >= tokens.generation

    def _raise_if_failed(self) -> None:
        failed = self._failure
        if failed is not None:
            # A fresh copy per raise: one shared instance would pile up tracebacks
            # across threads; the text is the same.
            raise _copy(failed)

    def _fail(self, error: TscError) -> NoReturn:
        """Remember ``error`` as final for this run and raise it. An API error becomes
        an AuthError, so that callers (the executor) start nothing new after it."""
        if isinstance(error, ApiError) and not isinstance(error, AuthError):
            error = AuthError(
                error.method,
                error.path,
                error.status,
                error.error_code,
                error.error_message,
                detail=error.detail,
            )
        self._failure = error
        self._raise_if_failed()
        raise AssertionError("unreachable")

    def _ensure_or_fail(self) -> Tokens:
        try:
            return self._ensure()
        except TscError as error:
            failure = error
        # Raised outside the except block: no chained exception travels with it.
        self._fail(failure)

    def _refuse(self, error: ApiError, *, why: str = "credentials refused") -> NoReturn:
        """Raise ``error`` as an AuthError that says the login is not retried."""
        note = f"{why}; not retried: repeated failed logins lock the user"
        raise AuthError(
            error.method,
            error.path,
            error.status,
            error.error_code,
            error.error_message,
            detail=f"{error.detail}; {note}" if error.detail else note,
        )

    def _ensure(self) -> Tokens:
        if self._bearer is None or self._clock() >= self._bearer_renew_at:
            self._obtain_bearer()
        if self._session is None:
            self._login()
        assert self._bearer is not None and self._session is not None
        return Tokens(self._generation, self._bearer, self._session)

    def _obtain_bearer(self) -> None:
        started = self._clock()
        creds = self._credentials
        response = self._wire.send(
            "POST",
            TOKEN_PATH,
            kind="auth",
            auth=HTTPBasicAuth(creds.client_id, creds.client_secret),
            data={"grant_type": "client_credentials"},
        ).response
        if response.status_code in (400, 401):
            self._refuse(self._wire.error("POST", TOKEN_PATH, response))
        if not _status_ok(response):
            raise self._wire.error("POST", TOKEN_PATH, response)
        body = _json_object(response)
        token = body.get("access_token") if body else None
        if not isinstance(token, str) or not token:
            raise ApiError("POST", TOKEN_PATH, response.status_code, detail=_NO_TOKEN)
        self._remember(token)
        lifetime = _expires_in(body.get("expires_in") if body else None)
        self._bearer = token
        self._bearer_renew_at = started + lifetime - min(RENEW_MARGIN, lifetime / 10)
        self.token_grants += 1

    def _login(self) -> None:
        """Log in once. Any failure is final for the run, not only a refusal: we cannot
        tell which answers Verizon counts towards the lock-out, and a login that timed
        out may have counted. So at most LOGIN_ATTEMPTS POSTs per run, ever."""
        assert self._bearer is not None
        left = LOGIN_ATTEMPTS - self.login_attempts
        if left <= 0:
            raise AuthError(
                "POST",
                LOGIN_PATH,
                None,
                detail=f"not sent: this run has used its {LOGIN_ATTEMPTS} login attempts "
                "(repeated failed logins lock the user)",
            )
        creds = self._credentials
        try:
            response = self._wire.send(
                "POST",
                LOGIN_PATH,
                kind="auth",
                auth=TokenAuth(self._bearer),
                json={"username": creds.username, "password": creds.password},
                attempts=left,
                on_attempt=self._count_login,
            ).response
        except ApiError as error:  # no answer, or only retryable ones, after the attempts
            self._refuse(error, why="login failed")
        # Every login runs with a bearer obtained moments ago, so a refusal here is
        # about the user's credentials (or permissions), not a stale bearer.
        if response.status_code in (400, 401, 403):
            self._refuse(self._wire.error("POST", LOGIN_PATH, response))
        if not _status_ok(response):
            self._refuse(self._wire.error("POST", LOGIN_PATH, response), why="login failed")
        body = _json_object(response)
        token = body.get("sessionToken") if body else None
        if not isinstance(token, str) or not token:
            missing = ApiError("POST", LOGIN_PATH, response.status_code, detail=_NO_SESSION)
            self._refuse(missing, why="login failed")
        self._remember(token)
        self._session = token
        self._generation += 1
        self.logins += 1

    def _count_login(self) -> None:
        self.login_attempts += 1

    def _remember(self, token: str) -> None:
        with self._seen_lock:
            if token not in self._seen:
                self._seen.append(token)


def _copy(error: TscError) -> TscError:
    """A new instance with the same class, message and fields (no traceback)."""
    clone = type(error).__new__(type(error), *error.args)
    clone.__dict__.update(error.__dict__)
    return clone


def _expires_in(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return DEFAULT_EXPIRES_IN
    try:
        seconds = float(value)
    except ValueError:
        return DEFAULT_EXPIRES_IN
    return seconds if seconds > 0 else DEFAULT_EXPIRES_IN
