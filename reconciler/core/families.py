"""The family table: everything that differs between ThingSpace's callback APIs, in one place.

ThingSpace has several callback-registration APIs ("families"): Connectivity Management
(M2M), Software Management (FOTA) and more, each with its own base path, its own place
for the account and the service, its own field names and its own quirks. One
:class:`FamilySpec` value per family says all of that; the client, the listing
normalizer, the configuration schema and checks, and the renderers read it. No other
module names a family or branches on one: adding a family is one entry in
:data:`FAMILIES`, its services in ``schemas/services.json``, and tests.

Sources for each entry: ``shared/thingspace-api.md`` and ``shared/thingspace-families.md``
(Verizon's SDK 2.0.0 and the public API reference).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum


class Place(StrEnum):
    """Where a request carries a value."""

    PATH = "path"  # a path segment: /callbacks/{account}, /name/{service}
    QUERY = "query"  # a query parameter: ?accountName=...
    BODY = "body"  # a field of the JSON request body
    NONE = "none"  # not sent at all


@dataclass(frozen=True)
class Slot:
    """A place plus the parameter or field name it uses there (unused for PATH/NONE)."""

    place: Place
    name: str = ""


IN_PATH = Slot(Place.PATH)
NOWHERE = Slot(Place.NONE)


def query(name: str) -> Slot:
    return Slot(Place.QUERY, name)


def body(name: str) -> Slot:
    return Slot(Place.BODY, name)


class ListShape(StrEnum):
    """What a successful list call answers."""

    ARRAY = "array"  # a JSON array of registrations
    OBJECT = "object"  # one JSON object: the account's single registration
    EITHER = "either"  # an array, or one object standing for a one-item array


# Optional registration fields a family may accept besides the URL.
USERNAME = "username"
PASSWORD = "password"
HTTP_HEADERS = "httpHeaders"
OPTIONAL_FIELDS = (USERNAME, PASSWORD, HTTP_HEADERS)


@dataclass(frozen=True, order=True)
class FamilySpec:
    """One callback-registration API.

    ``name`` is the short label plans, saved plans and ``services.json`` use (and what
    families sort by). A family with
    ``service_field=None`` has one unnamed registration per account (FOTA v2/v3): its one
    service name in the catalog is ours, and is never sent.
    """

    name: str
    title: str  # for people: "Connectivity Management (M2M)"
    base: str  # the callbacks resource: "/api/m2m/v1/callbacks"
    list_account: Slot = IN_PATH  # where list and deregister name the account
    register_account: Slot = IN_PATH  # where register (and update) name it
    delete_service: Slot = IN_PATH  # IN_PATH means ".../name/{service}"
    service_field: str | None = "name"  # the register body's service field
    url_field: str = "url"  # the register body's and the listing's URL field
    options: frozenset[str] = frozenset()  # optional fields accepted: USERNAME, PASSWORD, ...
    update_method: str = "POST"  # "POST": re-registering replaces; "PUT": a separate update
    content_type: str = "application/json"  # what register/update send (some APIs use */*)
    list_shape: ListShape = ListShape.ARRAY
    empty_bodies: frozenset[bytes] = frozenset()  # besides [], bodies meaning "none registered"
    item_account: tuple[str, ...] = ("accountName",)  # listing fields naming the account
    item_service: tuple[str, ...] = ("serviceName",)  # listing fields naming the service
    shared_secret_header: str | None = None  # register answers an HMAC key in this header

    def accepts(self, option: str) -> bool:
        return option in self.options

    @property
    def per_account(self) -> bool:
        """One registration per account (its service is not named on the wire)."""
        return self.service_field is None


M2M = FamilySpec(
    name="m2m",
    title="Connectivity Management (M2M)",
    base="/api/m2m/v1/callbacks",
    options=frozenset({USERNAME, PASSWORD}),
    # The docs do not say what an empty listing looks like; only [] is accepted, so an
    # empty body is reported rather than guessed at (thingspace-families.md §1).
)

FOTA = FamilySpec(
    name="fota",
    title="Software Management (FOTA v1)",
    base="/api/fota/v1/callbacks",
    # "The response body will be empty if there are no callback services registered".
    empty_bodies=frozenset({b"", b"null"}),
    item_account=("aname",),
    item_service=("name",),
)

# Declaration order is the order families are read and merged in (deterministic plans).
FAMILIES: tuple[FamilySpec, ...] = (M2M, FOTA)

_extra: list[FamilySpec] = []


def all_families() -> tuple[FamilySpec, ...]:
    """Every known family, in declaration order."""
    return (*FAMILIES, *_extra)


def by_name(name: str) -> FamilySpec | None:
    for spec in all_families():
        if spec.name == name:
            return spec
    return None


@contextmanager
def extra_family(spec: FamilySpec) -> Iterator[FamilySpec]:
    """Add ``spec`` to the table for the duration of the block (tests of a new family)."""
    if by_name(spec.name) is not None:
        raise ValueError(f"family {spec.name!r} already exists")
    _extra.append(spec)
    try:
        yield spec
    finally:
        _extra.remove(spec)
