"""The callback endpoints of every family, driven by its entry in the family table.

One :class:`FamilyApi` per :class:`~reconciler.simulator.families.Family`: list, register,
update (PUT, where the entry allows it) and deregister, with the routes, the account and
the service found where the entry says. Nothing here asks which family it serves.

Checks run in ThingSpace's order: authentication, the account (known? writes failing?),
then the request itself. A family whose account travels in the JSON body needs that body
read before the account can be checked; every other family reads it last.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, assert_never
from urllib.parse import urlsplit

from reconciler.simulator.families import (
    OPTIONAL_FIELDS,
    ErrorStyle,
    Family,
    FamilyTable,
    Item,
    Place,
    Shape,
)
from reconciler.simulator.faults import FaultController
from reconciler.simulator.state import RegistrationStore, StoredCallback, is_string_map
from reconciler.simulator.wire import (
    Handler,
    Request,
    Response,
    Routes,
    error_response,
    json_response,
    match,
)

SANDBOX_ACCOUNT = "TestAccount-2"
_WITH_BODY = ("POST", "PUT")

AuthCheck = Callable[[Request], Response | None]
Opened = tuple[str, dict[str, Any] | None]  # the account, and the body if already read


class FamilyApi:
    """The ``/callbacks`` endpoints of one family of ``table`` over the shared store."""

    def __init__(
        self,
        family: Family,
        *,
        table: FamilyTable,
        store: RegistrationStore,
        check_auth: AuthCheck,
        accounts: frozenset[str] | None,
        faults: FaultController,
    ) -> None:
        self.family = family
        self.table = table
        self.store = store
        self.check_auth = check_auth
        self.accounts = accounts
        self.faults = faults
        self.routes = self._routes()
        shapes = (family.list_item, family.register_reply, family.deregister_reply)
        self._dated = any(item is Item.CREATED_ON for shape in shapes for _, item in shape)

    def _routes(self) -> Routes:
        family = self.family
        collection = tuple(family.callbacks_path.strip("/").split("/"))
        if family.account_in is Place.PATH:
            collection += ("{account}",)
        methods: dict[str, Handler] = {"GET": self._list, "POST": self._register}
        if family.update:
            methods["PUT"] = self._update
        if family.deregister_service is not Place.PATH:
            methods["DELETE"] = self._deregister
            return [(collection, methods)]
        named = (*collection, "name", "{service}")
        return [(collection, methods), (named, {"DELETE": self._deregister})]

    def serves(self, req: Request) -> bool:
        """Whether ``req``'s path is one of this family's."""
        return any(match(pattern, req.segments) is not None for pattern, _ in self.routes)

    def styled(self, response: Response) -> Response:
        """``response`` with an error body in this family's style. Errors are built as
        ``{errorCode, errorMessage}``; HPL's SDK exception reads ``{responseCode, message,
        fault: {code, message, description}}`` (families §0), so they are restated."""
        if self.family.error_style is ErrorStyle.ERROR_CODE or response.status < 400:
            return response
        try:
            error = json.loads(response.body)
            code, message = str(error["errorCode"]), str(error["errorMessage"])
        except (ValueError, TypeError, KeyError):
            return response
        fault = {"code": code, "message": message, "description": message}
        body = {"responseCode": code, "message": message, "fault": fault}
        return json_response(response.status, body, *response.headers)

    def account_of(self, req: Request) -> str | None:
        """The account ``req`` names, if it is a call on this family (for the request log,
        which records it even for a request that faults or fails)."""
        for pattern, _ in self.routes:
            params = match(pattern, req.segments)
            if params is None:
                continue
            if self.family.account_in is Place.PATH:
                return params["account"]
            if self.family.account_in is Place.BODY and req.method in _WITH_BODY:
                try:
                    body = json.loads(req.body)
                except ValueError:  # UnicodeDecodeError included
                    return None
                account = body.get(self.family.account_key) if isinstance(body, dict) else None
                return account if isinstance(account, str) and account else None
            return req.query.get(self.family.account_key) or None
        return None

    # --- handlers ---------------------------------------------------------------------

    def _list(self, req: Request, params: dict[str, str]) -> Response:
        opened = self._open(req, params, write=False)
        if isinstance(opened, Response):
            return opened
        account, family = opened[0], self.family
        items = [_render(family.list_item, account, s, cb) for s, cb in self._listed(account)]
        if not items:  # as documented per family: FOTA's is an empty body, M2M's []
            return Response(200, family.empty_list_body)
        return json_response(200, items if family.list_is_array else items[0])

    def _register(self, req: Request, params: dict[str, str]) -> Response:
        return self._write(req, params, update=False)

    def _update(self, req: Request, params: dict[str, str]) -> Response:
        return self._write(req, params, update=True)

    def _write(self, req: Request, params: dict[str, str], *, update: bool) -> Response:
        """Register (replacing the same service) or, for PUT, replace an existing one."""
        opened = self._open(req, params, write=True)
        if isinstance(opened, Response):
            return opened
        account, read = opened
        body = self._json_body(req) if read is None else read
        if isinstance(body, Response):
            return body
        parsed = self._registration(body)
        if isinstance(parsed, Response):
            return parsed
        service, callback = parsed
        key = self.family.store_key(service)
        if update:
            if not self.store.replace(account, key, callback):
                return _not_registered(account, service)
        else:
            self.store.put(account, key, callback)
        header = self.family.secret_header
        # The shared secret the real API signs callbacks with; the simulator sends no
        # callbacks, so it keeps none, but a client must be able to read one.
        shared = ((header, secrets.token_hex(32)),) if header and not update else ()
        return _reply(self.family.register_reply, account, service, callback, *shared)

    def _deregister(self, req: Request, params: dict[str, str]) -> Response:
        opened = self._open(req, params, write=True)
        if isinstance(opened, Response):
            return opened
        account = opened[0]
        service = self._named_service(req, params)
        if isinstance(service, Response):
            return service
        refused = self._service_check(service)
        if refused:
            return refused
        removed = self.store.remove(account, self.family.store_key(service))
        if removed is None:
            return _not_registered(account, service)
        return _reply(self.family.deregister_reply, account, service, removed)

    # --- where things are -------------------------------------------------------------

    def _open(self, req: Request, params: dict[str, str], *, write: bool) -> Opened | Response:
        """Authentication, then the account and its checks; the account (and the body, if
        the account had to be read from it) or the refusal."""
        refused = self.check_auth(req)
        if refused:
            return refused
        family = self.family
        body: dict[str, Any] | None = None
        if family.account_in is Place.PATH:
            account = params["account"]
        elif family.account_in is Place.BODY and req.method in _WITH_BODY:
            read = self._json_body(req)
            if isinstance(read, Response):
                return read
            body, value = read, read.get(family.account_key)
            if not isinstance(value, str) or not value:
                return _required(family.account_key)
            account = value
        else:
            account = req.query.get(family.account_key, "")
            if not account:
                return error_response(400, f"query parameter {family.account_key!r} is required")
        refused_status = self.faults.refusal(account, family.base)
        if refused_status is not None:  # an account not entitled to this API
            return error_response(refused_status, "this account is not entitled to this API")
        return self._admit(account, write=write) or (account, body)

    def _admit(self, account: str, *, write: bool) -> Response | None:
        known = self.accounts
        if known is not None and account not in known and account != SANDBOX_ACCOUNT:
            return error_response(400, f"unknown account {account!r}")
        failing = self.faults.write_failure(account) if write else None
        if failing is not None:
            return error_response(failing, "simulated failure: writes to this account fail")
        return None

    def _named_service(self, req: Request, params: dict[str, str]) -> str | Response:
        """The service a DELETE names (a family without service names has just one)."""
        family = self.family
        if family.deregister_service is Place.PATH:
            return params["service"]
        if family.deregister_service is Place.NONE:
            return family.services[0]
        for name in family.service_params:
            if req.query.get(name):
                return req.query[name]
        return error_response(400, f"query parameter {family.service_params[0]!r} is required")

    def _listed(self, account: str) -> list[tuple[str, StoredCallback]]:
        family = self.family
        return [
            (family.service_of(key), callback)
            for key, callback in self.store.registrations(account)
            if self.table.lister_of(key) is family
        ]

    # --- request bodies ---------------------------------------------------------------

    def _service_check(self, service: str) -> Response | None:
        if self.family.free_names:  # any name: it is stored in the family's own namespace
            return None
        owner = self.table.family_of(service)
        if owner is self.family:
            return None
        hint = f" (use {owner.base})" if owner else ""
        return error_response(
            400, f"{service!r} is not a {self.family.label} callback service{hint}"
        )

    def _json_body(self, req: Request) -> dict[str, Any] | Response:
        content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
        accepted = self.family.content_types
        if content_type not in accepted:
            return error_response(400, "Content-Type must be " + " or ".join(sorted(accepted)))
        try:
            body = json.loads(req.body)
        except ValueError:  # UnicodeDecodeError included
            return error_response(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return error_response(400, "request body must be a JSON object")
        return body

    def _registration(self, body: dict[str, Any]) -> tuple[str, StoredCallback] | Response:
        """The service and registration a POST/PUT body describes, checked field by field
        (messages name fields, never echo their values)."""
        family = self.family
        if family.service_field is None:
            service = family.services[0]
        else:
            name = body.get(family.service_field)
            if not isinstance(name, str) or not name:
                return _required(family.service_field)
            refused = self._service_check(name)
            if refused:
                return refused
            service = name
        url = body.get(family.url_field)
        if not isinstance(url, str) or not url:
            return _required(family.url_field)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return error_response(
                400, f"{family.url_field!r} must be an absolute http or https URL"
            )
        if any(key in body for key in family.refused_fields):
            refused_keys = " or ".join(family.refused_fields)
            return error_response(400, f"{family.label} callbacks take no {refused_keys}")
        # Only the fields this family accepts are read: any other key is ignored.
        given = {k: body[k] for k in OPTIONAL_FIELDS if k in family.optional_fields and k in body}
        for key, value in given.items():
            if key == "httpHeaders" and not is_string_map(value):
                return error_response(400, f"{key!r} must be an object of strings")
            if key != "httpHeaders" and not isinstance(value, str):
                return error_response(400, f"{key!r} must be a string")
        return service, StoredCallback(
            url,
            username=given.get("username") or None,
            password=given.get("password") or None,
            http_headers=given.get("httpHeaders") or None,
            # Every POST is a registration of its own, so it is dated afresh; a PUT too.
            created_on=_now_rfc3339() if self._dated else None,
        )


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _required(field: str) -> Response:
    return error_response(400, f"{field!r} is required and must be a string")


def _not_registered(account: str, service: str) -> Response:
    return error_response(400, f"service {service!r} is not registered for account {account!r}")


def _render(shape: Shape, account: str, service: str, callback: StoredCallback) -> dict[str, Any]:
    return {key: _value(item, account, service, callback) for key, item in shape}


def _value(item: Item, account: str, service: str, callback: StoredCallback) -> Any:
    # A match, not a dict keyed by Item: an Enum member's hash runs Python code, and a
    # listing renders every item of an account (15 for an M2M account).
    match item:
        case Item.ACCOUNT:
            return account
        case Item.SERVICE:
            return service
        case Item.URL:
            return callback.url
        case Item.USERNAME:
            return callback.username or ""
        case Item.PASSWORD:
            return callback.password or ""
        case Item.HTTP_HEADERS:
            return dict(callback.http_headers or {})
        case Item.CREATED_ON:
            return callback.created_on  # null only for a hand-written state file
        case Item.SUCCESS:
            return True
    assert_never(item)


def _reply(
    shape: Shape, account: str, service: str, callback: StoredCallback, *headers: tuple[str, str]
) -> Response:
    if not shape:  # the family answers success with no content
        return Response(200, b"", headers)
    return json_response(200, _render(shape, account, service, callback), *headers)
