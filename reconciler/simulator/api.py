"""The simulated ThingSpace API: ``/api/...`` requests in, responses out (no sockets here).

Behaves as the team's API notes (``thingspace-api.md``) document ThingSpace, quirks included
(FOTA's empty list body, ``aname``/``name`` field names), so clients are tested against
the API and not against themselves. Every ``/api`` request first meets the fault
controller, then authentication, then the endpoint; each is recorded in the request log
(method, decoded path, status, account; never headers or bodies). Error bodies are
``{"errorCode", "errorMessage"}`` and never echo a password or token.

The callback endpoints come from the family table
(:mod:`reconciler.simulator.families`, served by :mod:`reconciler.simulator.callbacks`);
this module holds authentication and the dispatch.

Accounts: any name unless a set is configured; the ThingSpace sandbox account
``TestAccount-2`` is always accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any
from urllib.parse import parse_qs

from reconciler.simulator.callbacks import SANDBOX_ACCOUNT, FamilyApi
from reconciler.simulator.families import FAMILIES, FamilyTable
from reconciler.simulator.faults import FaultController, FaultKind
from reconciler.simulator.state import (
    AuthState,
    LoginOutcome,
    RegistrationStore,
    RequestLog,
    RequestRecord,
)
from reconciler.simulator.wire import (
    Request,
    Response,
    Routes,
    error_response,
    json_response,
    match,
    route,
)

__all__ = ["SANDBOX_ACCOUNT", "Api"]

_M2M_SESSION = ("api", "m2m", "v1", "session")


class Api:
    """The ``/api`` endpoints over the given state objects (shared with the admin side).

    ``families`` is the simulator's own table; another is for tests of the machinery.
    """

    def __init__(
        self,
        *,
        store: RegistrationStore,
        auth: AuthState,
        faults: FaultController,
        log: RequestLog,
        accounts: frozenset[str] | None,
        token_ttl_seconds: float,
        families: FamilyTable = FAMILIES,
    ) -> None:
        self.store, self.auth, self.faults, self.log = store, auth, faults, log
        self.accounts = accounts
        self.token_ttl_seconds = token_ttl_seconds
        self.families = [
            FamilyApi(
                family,
                table=families,
                store=store,
                check_auth=self._check_auth,
                accounts=accounts,
                faults=faults,
            )
            for family in families.families
        ]
        self.routes: Routes = [
            (("api", "ts", "v1", "oauth2", "token"), {"POST": self._token}),
            ((*_M2M_SESSION, "login"), {"POST": self._login}),
            ((*_M2M_SESSION, "logout"), {"POST": self._logout}),
            *(r for family in self.families for r in family.routes),
        ]

    def handle(self, req: Request) -> Response | None:
        """The response, or None to drop the connection without answering."""
        decision = self.faults.decide()
        if decision.latency_ms:
            # Answered latency_ms after the request arrived, the simulator's own work so
            # far included: a burst of requests waiting for this interpreter's lock is not
            # made later than the latency asked for (benchmarks measure the client).
            spent = 0.0 if req.arrived is None else time.monotonic() - req.arrived
            time.sleep(max(0.0, decision.latency_ms / 1000 - spent))
        response: Response | None = None
        if decision.kind is FaultKind.RATE_LIMIT:
            retry = ("Retry-After", str(decision.retry_after))
            response = error_response(429, "rate limit exceeded, retry later", None, retry)
        elif decision.kind is FaultKind.SERVER_ERROR:
            response = error_response(decision.status, "simulated server error")
        elif decision.kind is None:
            response = route(self.routes, req)[0]
        if response is not None:
            served = next((f for f in self.families if f.serves(req)), None)
            response = served.styled(response) if served else response
        account = self._account_of(req)
        status = response.status if response else None
        record = RequestRecord(req.method, "/" + "/".join(req.segments), status, account)
        self.log.add(record, self._route_of(req))
        return response

    def _route_of(self, req: Request) -> str | None:
        """The route pattern ``req`` matches ("/api/m2m/v1/callbacks/{account}"), if any."""
        for pattern, _methods in self.routes:
            if match(pattern, req.segments) is not None:
                return "/" + "/".join(pattern)
        return None

    def _account_of(self, req: Request) -> str | None:
        for family in self.families:
            account = family.account_of(req)
            if account is not None:
                return account
        return None

    # --- authentication ---------------------------------------------------------------

    def _token(self, req: Request, _: dict[str, str]) -> Response:
        client = _basic_auth(req.headers.get("authorization", ""))
        token = self.auth.issue_token(*client) if client else None
        if token is None:
            return error_response(401, "invalid client credentials")
        form = parse_qs(req.body.decode("utf-8", "replace"))
        if form.get("grant_type") != ["client_credentials"]:
            return error_response(400, "grant_type must be client_credentials")
        ttl = round(self.token_ttl_seconds)
        return json_response(
            200, {"access_token": token, "token_type": "bearer", "expires_in": ttl}
        )

    def _bearer_ok(self, req: Request) -> bool:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(token) and self.auth.token_valid(token.strip())

    def _check_auth(self, req: Request) -> Response | None:
        if not self._bearer_ok(req):
            return error_response(401, "missing, invalid or expired bearer token")
        if not self.auth.touch_session(req.headers.get("vz-m2m-token", "")):
            return error_response(401, "missing, invalid or expired VZ-M2M-Token session")
        return None

    def _login(self, req: Request, _: dict[str, str]) -> Response:
        if not self._bearer_ok(req):
            return error_response(401, "missing, invalid or expired bearer token")
        body = _json_object(req)
        if isinstance(body, Response):
            return body
        user, password = body.get("username"), body.get("password")
        if not isinstance(user, str) or not isinstance(password, str):
            return error_response(400, "username and password are required strings")
        outcome, session = self.auth.login(user, password)
        if outcome is LoginOutcome.LOCKED:
            return error_response(401, "user is locked after repeated failed logins", "USER_LOCKED")
        if session is None:
            return error_response(400, "invalid username or password", "INVALID_LOGIN")
        return json_response(200, {"sessionToken": session})

    def _logout(self, req: Request, _: dict[str, str]) -> Response:
        refused = self._check_auth(req)
        if refused:
            return refused
        session = req.headers["vz-m2m-token"]
        self.auth.logout(session)
        return json_response(200, {"sessionToken": session})


def _basic_auth(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII text where base64 goes
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _json_object(req: Request) -> dict[str, Any] | Response:
    content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return error_response(400, "Content-Type must be application/json")
    try:
        body = json.loads(req.body)
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "request body is not valid JSON")
    if not isinstance(body, dict):
        return error_response(400, "request body must be a JSON object")
    return body
