"""What each family's calls look like on the wire, read from its :class:`FamilySpec`.

Pure functions: request paths and bodies for list/register/deregister, and listing
bodies parsed and normalized into :class:`Registration` values. This is where the
families' quirks stop (FOTA's empty body, ``aname``/``name`` versus
``accountName``/``serviceName``, passwords that may or may not be returned), so the
planner compares like with like.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from reconciler.core import catalog
from reconciler.core.errors import ApiError
from reconciler.core.families import (
    HTTP_HEADERS,
    PASSWORD,
    USERNAME,
    FamilySpec,
    ListShape,
    Place,
    Slot,
)
from reconciler.core.model import Registration
from reconciler.core.secrets import Secret


def _segment(value: str) -> str:
    return "/" + quote(value, safe="")


def _url(path: str, params: dict[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _place(slot: Slot, value: str, path: str, params: dict[str, str]) -> str:
    """Put ``value`` where ``slot`` says (path or query); returns the path."""
    if slot.place is Place.PATH:
        return path + _segment(value)
    if slot.place is Place.QUERY:
        params[slot.name] = value
    return path


def list_path(spec: FamilySpec, account: str) -> str:
    """The list call's path and query for ``account`` (names percent-encoded)."""
    params: dict[str, str] = {}
    path = _place(spec.list_account, account, spec.base, params)
    return _url(path, params)


def deregister_path(spec: FamilySpec, account: str, service: str) -> str:
    params: dict[str, str] = {}
    path = _place(spec.list_account, account, spec.base, params)
    if spec.delete_service.place is Place.PATH:
        path += "/name" + _segment(spec.wire_name(service))
    elif spec.delete_service.place is Place.QUERY:
        params[spec.delete_service.name] = spec.wire_name(service)
    return _url(path, params)


@dataclass(frozen=True)
class WriteCall:
    """A register or update request. ``secrets`` are the values in ``body`` to scrub from
    any error text (a password the server might echo)."""

    method: str
    path: str
    body: dict[str, Any]
    secrets: tuple[str, ...] = ()


def register_call(
    spec: FamilySpec, account: str, service: str, registration: Registration, *, update: bool
) -> WriteCall:
    """Register (or, with ``update``, change) one listener; only fields the family takes."""
    params: dict[str, str] = {}
    path = _place(spec.register_account, account, spec.base, params)
    body: dict[str, Any] = {}
    if spec.register_account.place is Place.BODY:
        body[spec.register_account.name] = account
    if spec.service_field is not None:
        body[spec.service_field] = spec.wire_name(service)
    body[spec.url_field] = registration.url
    secrets: list[str] = []
    if spec.accepts(HTTP_HEADERS) and registration.headers:
        body[HTTP_HEADERS] = {name: value.reveal() for name, value in registration.headers}
        secrets.extend(registration.header_values())
    if spec.accepts(USERNAME) and registration.username:
        body[USERNAME] = registration.username
    if spec.accepts(PASSWORD) and registration.password is not None:
        value = registration.password.reveal()
        if value:
            body[PASSWORD] = value
            secrets.append(value)
    method = spec.update_method if update else "POST"
    return WriteCall(method, _url(path, params), body, tuple(secrets))


@dataclass(frozen=True)
class Issued:
    """What a registration answered in a family that issues a shared secret (its
    ``shared_secret_header``): the HMAC key the listener verifies callbacks with, or
    None when the answer carried none ("no secret issued")."""

    secret: Secret | None


def issued_secret(spec: FamilySpec, headers: Mapping[str, str] | None) -> Issued | None:
    """The shared secret in a successful registration's response ``headers`` (None:
    the family issues none; ``headers`` None: no answer of ours to read it from).

    The header's real name is not documented (thingspace-families.md §2, §3: "the
    response ... will contain the secret key in the header"); the table names the one
    assumed. An empty or blank value is no secret.
    """
    if spec.shared_secret_header is None:
        return None
    value = (headers or {}).get(spec.shared_secret_header, "").strip()
    return Issued(Secret(value) if value else None)


# -- listings -----------------------------------------------------------------------------


def _unexpected(path: str, status: int, what: str) -> ApiError:
    # Only field names and positions: values may be secrets (a password).
    return ApiError("GET", path, status, detail=f"unexpected response: {what}")


def parse_listing(spec: FamilySpec, path: str, status: int, content: bytes) -> list[dict[str, Any]]:
    """A list call's body as a list of item objects, per the family's shape and quirks."""
    if content.strip() in spec.empty_bodies:
        return []
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        raise _unexpected(path, status, "body is not JSON") from None
    if isinstance(data, dict) and spec.list_shape is not ListShape.ARRAY:
        data = [data]
    if not isinstance(data, list):
        expected = "a JSON object" if spec.list_shape is ListShape.OBJECT else "a JSON array"
        raise _unexpected(path, status, f"expected {expected}")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise _unexpected(path, status, f"item {index} is not an object")
    return data


def normalize(
    spec: FamilySpec, account: str, items: list[dict[str, Any]], *, path: str | None = None
) -> dict[str, Registration]:
    """Listed items -> ``{service: Registration}`` for ``account``.

    Items naming another account are ignored. A ``password`` field that is absent means
    "unknown" (the API is not promised to return it); present but empty means "no
    password". A family that takes no password has none, known.
    """
    where = path or list_path(spec, account)
    found: dict[str, Registration] = {}
    for index, item in enumerate(items):
        if not _belongs(item, spec.item_account, account, where, index):
            continue
        service = _service(spec, item, where, index)
        username = _optional(item, USERNAME, where, index) if spec.accepts(USERNAME) else None
        secret: Secret | None = None
        known = True
        if spec.accepts(PASSWORD):
            if PASSWORD in item:
                password = _optional(item, PASSWORD, where, index)
                secret = Secret(password) if password else None
            else:
                known = False
        headers, headers_known = (
            _headers(item, where, index) if spec.accepts(HTTP_HEADERS) else (None, True)
        )
        found[service] = Registration(
            url=_required(item, spec.url_field, where, index),
            username=username,
            password=secret,
            password_known=known,
            family=spec,
            headers=headers,
            headers_known=headers_known,
        )
    return found


def _headers(
    item: dict[str, Any], path: str, index: int
) -> tuple[tuple[tuple[str, Secret], ...] | None, bool]:
    """(headers, known): absent means "not returned" (unknown), {} or null none."""
    if HTTP_HEADERS not in item:
        return None, False
    value = item[HTTP_HEADERS]
    if value is None or value == {}:
        return None, True
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _item_error(path, index, f"has a malformed {HTTP_HEADERS}")
    return tuple((name, Secret(text)) for name, text in sorted(value.items())), True


def _service(spec: FamilySpec, item: dict[str, Any], path: str, index: int) -> str:
    if spec.per_account:  # the one registration carries no name: it is the family's service
        return catalog.services_of(spec)[0]
    for field in spec.item_service[:-1]:
        if isinstance(item.get(field), str) and item[field]:
            return spec.config_name(str(item[field]))
    return spec.config_name(_required(item, spec.item_service[-1], path, index))


def _item_error(path: str, index: int, what: str) -> ApiError:
    return _unexpected(path, 200, f"item {index} {what}")


def _belongs(item: object, fields: tuple[str, ...], account: str, path: str, index: int) -> bool:
    if not isinstance(item, dict):
        raise _item_error(path, index, "is not an object")
    for field in fields:
        owner = item.get(field)
        if owner is None:
            continue
        if isinstance(owner, bool) or not isinstance(owner, str | int):
            raise _item_error(path, index, f"has a non-string {field}")
        return str(owner) == account
    return True  # no owner named: the listing was for this account


def _required(item: dict[str, Any], field: str, path: str, index: int) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise _item_error(path, index, f"has no {field}")
    return value


def _optional(item: dict[str, Any], field: str, path: str, index: int) -> str | None:
    value = item.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _item_error(path, index, f"has a non-string {field}")
    return value
