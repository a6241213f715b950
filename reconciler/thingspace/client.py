"""The one HTTP client for the ThingSpace callback APIs (every family in the table).

One ``requests.Session``, timeouts on every call, retries with backoff in one place
(``reconciler.thingspace.transport``), authentication shared across threads
(``reconciler.thingspace.auth``), each family's request and listing shapes read from the
family table (``reconciler.thingspace.wireformat``), and errors that name method and path
but never carry a secret.
"""

from __future__ import annotations

import base64
import contextlib
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from reconciler.core.errors import ApiError, AuthError, TscError
from reconciler.core.families import FamilySpec
from reconciler.core.model import Registration
from reconciler.core.secrets import SecretRegistry
from reconciler.thingspace import wireformat
from reconciler.thingspace.auth import Authenticator, Tokens
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.endpoint import normalize_endpoint
from reconciler.thingspace.events import WireObserver
from reconciler.thingspace.options import ClientOptions
from reconciler.thingspace.transport import RequestStats, Sent, Wire
from reconciler.thingspace.wireformat import Issued

# A 401 is answered by renewing the bearer (when it is the likely culprit), then the
# session; never more than this per call (and the session at most
# auth.MAX_SESSION_RENEWALS times per run).
MAX_RENEWALS = 2

# How a refusal says the desired state may already be there (ThingSpace documents no
# codes for these): a deregistration of what is not registered, a registration of what
# already is. Either way a list call decides; the words alone never make a success.
_NOT_REGISTERED = re.compile(
    r"\bnot\s+(registered|found)\b|\bdoes\s*n[o']t\s+exist|\bno\s+such\b", re.I
)
_ALREADY_REGISTERED = re.compile(r"\balready\b|\bduplicate\b", re.I)


def _says(error: ApiError, words: re.Pattern[str]) -> bool:
    return error.status == 400 and any(
        words.search(text) for text in (error.error_code, error.error_message) if text
    )


def _session(parallelism: int) -> requests.Session:
    """A session with a connection per worker. The environment's proxy and CA settings
    are read once per run, by the wire (:func:`transport.request_settings`)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(10, parallelism))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class ThingSpaceClient:
    """Lists, registers and deregisters callback listeners; safe to share across threads."""

    def __init__(
        self,
        endpoint: str,
        credentials: Credentials,
        *,
        options: ClientOptions | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        known_secrets: Callable[[], Iterable[str]] = tuple,
        stop: threading.Event | None = None,
        observer: WireObserver | None = None,
    ) -> None:
        """``known_secrets``: more values to mask in text the API sends back, besides the
        client's own (the configuration's callback passwords, say); asked on every error.
        ``sleep`` defaults to a wait that ends early once ``stop`` is set (Ctrl-C): after
        that, no new request is sent. ``options.deadline`` counts from here. ``observer``
        hears every attempt and every wait before a retry, from any thread."""
        self.endpoint = normalize_endpoint(endpoint)
        options = options or ClientOptions()
        self.options = options
        self._credentials = credentials
        self._known_secrets = known_secrets
        self._owns_session = session is None
        if session is None:
            session = _session(options.parallelism)
        self._session = session
        self._wire = Wire(
            self.endpoint,
            session,
            options,
            sleep=sleep,
            rng=rng if rng is not None else random.Random(),
            secrets=self.secrets,
            clock=clock,
            stop=stop,
            observer=observer,
        )
        self._auth = Authenticator(self._wire, credentials, clock=clock)
        # Shared secrets registrations answered: masked like the credentials from then on.
        self._issued_secrets = SecretRegistry()
        self._logout: threading.Thread | None = None

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

    def list_callbacks(self, account: str, family: FamilySpec) -> list[dict[str, Any]]:
        """The raw items registered for ``account`` in ``family`` (empty-body quirks read
        as no items)."""
        path = wireformat.list_path(family, account)
        response = self._call("GET", path).response
        if not 200 <= response.status_code < 300:
            error = self._wire.error("GET", path, response)
            if (error.status, error.error_code) in family.empty_errors:
                return []  # the family's way of saying "nothing registered"
            raise error
        return wireformat.parse_listing(family, path, response.status_code, response.content)

    def listing(self, account: str, family: FamilySpec) -> dict[str, Registration]:
        """``account``'s registrations in ``family``, normalized: ``{service: Registration}``."""
        items = self.list_callbacks(account, family)
        return wireformat.normalize(family, account, items)

    def register(
        self,
        account: str,
        family: FamilySpec,
        service: str,
        registration: Registration,
        *,
        update: bool = False,
    ) -> Issued | None:
        """Register one listener, or with ``update`` change an existing one (a re-POST or a
        PUT, as the family does it). Only the fields the family takes are sent.

        For a family that issues a shared secret (``shared_secret_header``), what the
        answer carried, as a :class:`Secret` the client also masks in any text the API
        sends back from then on; ``Issued(None)`` when it carried none (or when the
        registration was only confirmed by a list call). None for other families."""
        call = wireformat.register_call(family, account, service, registration, update=update)
        sent = self._call(
            call.method,
            call.path,
            json=call.body,
            content_type=family.content_type,
            extra_secrets=call.secrets,
        )
        status = sent.response.status_code
        if 200 <= status < 300:
            return self._issued(family, sent.response.headers)
        error = self._wire.error(call.method, call.path, sent.response, extra_secrets=call.secrets)
        # Refused as a repeat of an earlier attempt of ours that took effect, or as a
        # duplicate of what someone else registered: done, if it is exactly this one.
        maybe_there = (sent.ambiguous and 400 <= status < 500) or (
            status == 409 or _says(error, _ALREADY_REGISTERED)
        )
        if maybe_there and self._confirmed(
            error, lambda: self._is_registered(account, family, service, registration)
        ):
            # Registered, but by an answer we did not get (or someone else's request):
            # no secret of ours to hand on.
            return self._issued(family, None)
        raise error

    def _issued(self, family: FamilySpec, headers: Mapping[str, str] | None) -> Issued | None:
        issued = wireformat.issued_secret(family, headers)
        if issued is not None and issued.secret is not None:
            self._issued_secrets.add([issued.secret.reveal()])
        return issued

    def _is_registered(
        self, account: str, family: FamilySpec, service: str, registration: Registration
    ) -> bool:
        """Whether the listing shows ``service`` registered as ``registration`` says (the
        URL and username; a password cannot be compared)."""
        found = self.listing(account, family).get(service)
        return (
            found is not None
            and found.url == registration.url
            and found.username == (registration.username or None)
        )

    def deregister(self, account: str, family: FamilySpec, service: str) -> None:
        """Remove one listener. An answer saying it is not registered (after an earlier
        attempt of ours that got no clear answer, or because someone else removed it) is
        success when a list call confirms it is gone: the desired state is reached."""
        path = wireformat.deregister_path(family, account, service)
        sent = self._call("DELETE", path)
        status = sent.response.status_code
        if 200 <= status < 300:
            return
        error = self._wire.error("DELETE", path, sent.response)
        maybe_gone = (sent.ambiguous and status in (400, 404)) or (
            status in (404, 410)
            or _says(error, _NOT_REGISTERED)
            or (status, error.error_code) in family.empty_errors  # the family's "none"
        )
        if maybe_gone and self._confirmed(
            error, lambda: service not in self.listing(account, family)
        ):
            return
        raise error

    @staticmethod
    def _confirmed(refusal: ApiError, check: Callable[[], bool]) -> bool:
        """Whether a list call confirms the desired state despite ``refusal``; when the
        list call fails too, the refusal is what is reported."""
        try:
            return check()
        except AuthError:
            raise  # a refused login stops the run, whatever this call was
        except TscError:
            raise refusal from None

    # -- session ------------------------------------------------------------------------

    def log_out_soon(self) -> None:
        """The run makes no more API calls: log out in the background, while the caller
        plans and prints (a round trip less at the end of a plan); :meth:`close` waits
        for it. A call made after this would log in again."""
        if self._logout is None:
            self._logout = threading.Thread(target=self._auth.close, name="tsc-logout", daemon=True)
            self._logout.start()

    def close(self) -> None:
        """Best-effort logout of the M2M session if one is open; never raises."""
        # Closing runs in finally blocks: it must never mask the caller's outcome.
        if self._logout is not None:
            self._logout.join()
        with contextlib.suppress(Exception):
            self._auth.close()  # nothing left to do after log_out_soon
        with contextlib.suppress(Exception):
            self._wire.close()
        if self._owns_session:
            with contextlib.suppress(Exception):
                self._session.close()

    def deadline_paused(self) -> contextlib.AbstractContextManager[None]:
        """Time spent inside (a prompt) does not count towards the run's deadline."""
        return self._wire.guard.paused()

    def stats(self) -> RequestStats:
        auth = self._auth
        return self._wire.snapshot(
            token_grants=auth.token_grants, logins=auth.logins, relogins=auth.relogins
        )

    def secrets(self) -> list[str]:
        """Every secret the client knows (credentials, the Basic header, tokens so far, and
        ``known_secrets``), for masking in text the API sends back."""
        creds = self._credentials
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        return [
            *creds.secrets(),
            basic,
            *self._auth.secrets(),
            *self._issued_secrets.values(),
            *self._known_secrets(),
        ]

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content_type: str = "application/json",
        extra_secrets: Iterable[str] = (),
    ) -> Sent:
        """One API call with the shared tokens. A 401 renews them and the call is sent
        again: first, when the bearer is the likely culprit, with a new bearer alone;
        then with a new M2M session. A 401 that persists after a new login stops the run
        (the authenticator raises, and remembers, an AuthError)."""
        tokens: Tokens = self._auth.current()
        ambiguous = False

        def refusal(why: str) -> ApiError:
            return self._wire.error(
                method, path, sent.response, detail=why, extra_secrets=extra_secrets
            )

        for _ in range(MAX_RENEWALS + 1):
            sent = self._wire.send(
                method, path, kind="api", auth=tokens.auth(), json=json,
                content_type=content_type, extra_secrets=extra_secrets,
            )  # fmt: skip
            ambiguous = ambiguous or sent.ambiguous
            if sent.response.status_code != 401:
                self._auth.confirm(tokens)
                return Sent(sent.response, ambiguous)
            tokens = self._auth.renew(tokens, refusal)
        # Renewed twice and still refused (renew stops the run before this, normally).
        raise refusal("refused after renewing the bearer and the session")
