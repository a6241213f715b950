"""The simulated ThingSpace API: ``/api/...`` requests in, responses out (no sockets here).

Behaves as the team's API notes (``thingspace-api.md``) document ThingSpace, quirks included
(FOTA's empty list body, ``aname``/``name`` field names), so clients are tested against
the API and not against themselves. Every ``/api`` request first meets the fault
controller, then authentication, then the endpoint; each is recorded in the request log
(method, decoded path, status, account; never headers or bodies). Error bodies are
``{"errorCode", "errorMessage"}`` and never echo a password or token.

Accounts: any name unless a set is configured; the ThingSpace sandbox account
``TestAccount-2`` is always accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reconciler.core.catalog import family_of
from reconciler.core.model import Family
from reconciler.simulator.errors import SimulatorError
from reconciler.simulator.faults import FaultController, FaultKind
from reconciler.simulator.state import (
    AuthState,
    LoginOutcome,
    RegistrationStore,
    RequestLog,
    RequestRecord,
    StoredCallback,
)

SANDBOX_ACCOUNT = "TestAccount-2"
_M2M, _FOTA = ("api", "m2m", "v1"), ("api", "fota", "v1")


@dataclass(frozen=True)
class Request:
    method: str
    segments: tuple[str, ...]  # percent-decoded path segments
    headers: Mapping[str, str]  # lower-cased names
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


_CODES = {
    400: "INVALID_PARAMETER",
    401: "INVALID_ACCESS",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    429: "TOO_MANY_REQUESTS",
    501: "NOT_IMPLEMENTED",
}


def json_response(status: int, data: Any, *headers: tuple[str, str]) -> Response:
    return Response(status, json.dumps(data).encode("utf-8"), headers)


def error_response(
    status: int, message: str, code: str | None = None, *hdr: tuple[str, str]
) -> Response:
    default = "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR"
    body = {"errorCode": code or _CODES.get(status, default), "errorMessage": message}
    return json_response(status, body, *hdr)


Handler = Callable[[Request, dict[str, str]], Response]
Routes = list[tuple[tuple[str, ...], dict[str, Handler]]]


def route(routes: Routes, req: Request) -> tuple[Response, dict[str, str]]:
    """Run the handler whose pattern (``{name}`` = any non-empty segment) and method match.

    Unknown path -> 404, known path with another method -> 405; a :class:`SimulatorError` from
    a handler is the caller's mistake (400), anything else a simulator fault (500).
    """
    for pattern, methods in routes:
        params = match(pattern, req.segments)
        if params is None:
            continue
        handler = methods.get(req.method)
        if handler is None:
            allow = ("Allow", ", ".join(sorted(methods)))
            return error_response(405, f"method {req.method} not allowed", None, allow), params
        try:
            return handler(req, params), params
        except SimulatorError as exc:
            return error_response(400, str(exc)), params
        except Exception:  # a simulator bug or a refused state write: still answer
            return error_response(500, "internal simulator error"), params
    return error_response(404, "no such resource"), {}


class Api:
    """The ``/api`` endpoints over the given state objects (shared with the admin side)."""

    def __init__(
        self,
        *,
        store: RegistrationStore,
        auth: AuthState,
        faults: FaultController,
        log: RequestLog,
        accounts: frozenset[str] | None,
        token_ttl_seconds: float,
    ) -> None:
        self.store, self.auth, self.faults, self.log = store, auth, faults, log
        self.accounts = accounts
        self.token_ttl_seconds = token_ttl_seconds
        self.routes: Routes = [
            (("api", "ts", "v1", "oauth2", "token"), {"POST": self._token}),
            ((*_M2M, "session", "login"), {"POST": self._login}),
            ((*_M2M, "session", "logout"), {"POST": self._logout}),
            ((*_M2M, "callbacks", "{account}"), {"GET": self._m2m_list, "POST": self._m2m_put}),
            ((*_M2M, "callbacks", "{account}", "name", "{service}"), {"DELETE": self._m2m_del}),
            ((*_FOTA, "callbacks", "{account}"), {"GET": self._fota_list, "POST": self._fota_put}),
            ((*_FOTA, "callbacks", "{account}", "name", "{service}"), {"DELETE": self._fota_del}),
        ]

    def handle(self, req: Request) -> Response | None:
        """The response, or None to drop the connection without answering."""
        decision = self.faults.decide()
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000)
        response: Response | None = None
        if decision.kind is FaultKind.RATE_LIMIT:
            retry = ("Retry-After", str(decision.retry_after))
            response = error_response(429, "rate limit exceeded, retry later", None, retry)
        elif decision.kind is FaultKind.SERVER_ERROR:
            response = error_response(decision.status, "simulated server error")
        elif decision.kind is None:
            response = route(self.routes, req)[0]
        account = self._account_of(req.segments)
        status = response.status if response else None
        self.log.add(RequestRecord(req.method, "/" + "/".join(req.segments), status, account))
        return response

    def _account_of(self, segments: tuple[str, ...]) -> str | None:
        for pattern, _ in self.routes:
            params = match(pattern, segments)
            if params is not None:
                return params.get("account")
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

    # --- callbacks --------------------------------------------------------------------

    def _guard(self, req: Request, account: str, *, write: bool) -> Response | None:
        """Auth, then the account, then an injected write failure, in ThingSpace's order."""
        refused = self._check_auth(req)
        if refused:
            return refused
        known = self.accounts
        if known is not None and account not in known and account != SANDBOX_ACCOUNT:
            return error_response(400, f"unknown account {account!r}")
        failing = self.faults.write_failure(account) if write else None
        if failing is not None:
            return error_response(failing, "simulated failure: writes to this account fail")
        return None

    def _listed(self, account: str, family: Family) -> list[tuple[str, StoredCallback]]:
        return [(s, cb) for s, cb in self.store.registrations(account) if _family(s) is family]

    def _m2m_list(self, req: Request, p: dict[str, str]) -> Response:
        account = p["account"]
        refused = self._guard(req, account, write=False)
        if refused:
            return refused
        # Every item carries all five fields, empty when unset (the SDK's model has them
        # all): a client can tell "no password" from "not returned".
        items = [
            {
                "accountName": account,
                "serviceName": service,
                "url": cb.url,
                "username": cb.username or "",
                "password": cb.password or "",
            }
            for service, cb in self._listed(account, Family.M2M)
        ]
        return json_response(200, items)

    def _m2m_put(self, req: Request, p: dict[str, str]) -> Response:
        account = p["account"]
        refused = self._guard(req, account, write=True)
        body = refused or _registration_body(req, Family.M2M)
        if isinstance(body, Response):
            return body
        name, callback = body
        self.store.put(account, name, callback)
        return json_response(200, {"accountName": account, "serviceName": name})

    def _m2m_del(self, req: Request, p: dict[str, str]) -> Response:
        account, service = p["account"], p["service"]
        refused = self._guard(req, account, write=True) or _service_check(service, Family.M2M)
        if refused:
            return refused
        if self.store.remove(account, service) is None:
            return error_response(
                400, f"service {service!r} is not registered for account {account!r}"
            )
        return json_response(200, {"accountName": account, "serviceName": service})

    def _fota_list(self, req: Request, p: dict[str, str]) -> Response:
        account = p["account"]
        refused = self._guard(req, account, write=False)
        if refused:
            return refused
        items = [
            {"aname": account, "name": service, "url": cb.url}
            for service, cb in self._listed(account, Family.FOTA)
        ]
        # ThingSpace answers an empty body, not [], when nothing is registered.
        return json_response(200, items) if items else Response(200, b"")

    def _fota_put(self, req: Request, p: dict[str, str]) -> Response:
        account = p["account"]
        refused = self._guard(req, account, write=True)
        body = refused or _registration_body(req, Family.FOTA)
        if isinstance(body, Response):
            return body
        name, callback = body
        self.store.put(account, name, callback)
        return json_response(200, {"aname": account, "name": name, "url": callback.url})

    def _fota_del(self, req: Request, p: dict[str, str]) -> Response:
        account, service = p["account"], p["service"]
        refused = self._guard(req, account, write=True) or _service_check(service, Family.FOTA)
        if refused:
            return refused
        removed = self.store.remove(account, service)
        if removed is None:
            return error_response(
                400, f"service {service!r} is not registered for account {account!r}"
            )
        return json_response(200, {"aname": account, "name": service, "url": removed.url})


def match(pattern: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for want, got in zip(pattern, segments, strict=True):
        if want.startswith("{"):
            if not got:
                return None
            params[want.strip("{}")] = got
        elif want != got:
            return None
    return params


def _family(service: str) -> Family:
    # A name the catalog no longer knows (an old state file) still lists as M2M.
    return family_of(service) or Family.M2M


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


def _service_check(service: str, family: Family) -> Response | None:
    if family_of(service) is family:
        return None
    where = "/api/fota/v1" if family is Family.M2M else "/api/m2m/v1"
    hint = f" (use {where})" if family_of(service) else ""
    return error_response(
        400, f"{service!r} is not a {family.value.upper()} callback service{hint}"
    )


def _registration_body(req: Request, family: Family) -> tuple[str, StoredCallback] | Response:
    body = _json_object(req)
    if isinstance(body, Response):
        return body
    name, url = body.get("name"), body.get("url")
    if not isinstance(name, str) or not name:
        return error_response(400, "'name' is required and must be a string")
    refused = _service_check(name, family)
    if refused:
        return refused
    if not isinstance(url, str) or not url:
        return error_response(400, "'url' is required and must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return error_response(400, "'url' must be an absolute http or https URL")
    extras = [k for k in ("username", "password") if k in body]
    if family is Family.FOTA and extras:
        return error_response(400, "FOTA callbacks take no username or password")
    for key in extras:
        if not isinstance(body[key], str):
            return error_response(400, f"'{key}' must be a string")
    return name, StoredCallback(url, body.get("username") or None, body.get("password") or None)
