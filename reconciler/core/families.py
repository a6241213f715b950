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
from dataclasses import dataclass, replace
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
    # Free-form service names (HPL): the configuration writes "<prefix><name>", the wire
    # carries <name>; the prefix maps the entry to this family unambiguously.
    name_prefix: str = ""
    # Errors a list call answers that mean "nothing registered": (status, errorCode).
    empty_errors: frozenset[tuple[int, str]] = frozenset()
    aliases: tuple[str, ...] = ()  # other names people use for it, for "did you mean"
    content_type: str = "application/json"  # what register/update send (some APIs use */*)
    list_shape: ListShape = ListShape.ARRAY
    empty_bodies: frozenset[bytes] = frozenset()  # besides [], bodies meaning "none registered"
    item_account: tuple[str, ...] = ("accountName",)  # listing fields naming the account
    item_service: tuple[str, ...] = ("serviceName",)  # listing fields naming the service
    shared_secret_header: str | None = None  # register answers an HMAC key in this header

    def accepts(self, option: str) -> bool:
        return option in self.options

    def wire_name(self, service: str) -> str:
        """The service name as the API writes it (the configuration's without the prefix)."""
        return service[len(self.name_prefix) :] if self.name_prefix else service

    def config_name(self, wire: str) -> str:
        """The configuration's name for a service the API lists as ``wire``."""
        return self.name_prefix + wire

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

# The header name carrying the HMAC shared secret on Device Location and Diagnostics
# register is [UNCERTAIN] in Verizon's docs ("the response ... will contain the secret key
# in the header", no name given; the SDK does not model it): this is the simulator's
# name, to be changed here once the real one is known (thingspace-families.md §2, §3).
_SHARED_SECRET_HEADER = "X-Callback-Shared-Secret"

LOCATION = FamilySpec(
    name="location",
    title="Device Location",
    base="/api/loc/v1/callbacks",
    content_type="*/*",  # SDK: register sends Content-Type */* (families §2)
    # [SDK≠DOCS] the SDK model lists {name, url}, the docs {accountName, serviceName, url}:
    # both are read; the SDK's form is what the simulator answers.
    item_service=("name", "serviceName"),
    # Docs: "The response body will be empty if there are no callback services".
    empty_bodies=frozenset({b"", b"null"}),
    shared_secret_header=_SHARED_SECRET_HEADER,
)

DIAGNOSTICS = FamilySpec(
    name="diagnostics",
    title="Device Diagnostics",
    aliases=("DeviceDiagnostics",),
    base="/api/diagnostics/v1/callbacks",
    list_account=query("accountName"),  # GET and DELETE: ?accountName=
    register_account=body("accountName"),  # POST: the body's accountName
    delete_service=query("serviceName"),
    service_field="serviceName",
    url_field="endpoint",  # written `url` in the configuration
    options=frozenset({HTTP_HEADERS}),
    content_type="*/*",  # SDK: register sends Content-Type */* (families §3)
    # SDK-md: an array; the docs' example: one object. Either is read. The empty shape is
    # [UNCERTAIN]: [] and an empty body are both read as none.
    list_shape=ListShape.EITHER,
    empty_bodies=frozenset({b"", b"null"}),
    # [UNCERTAIN] the docs' error table has 403 CALLBACK_NOT_REGISTERED ("Callback is not
    # registered for this account"): on a list it can only mean "none registered".
    empty_errors=frozenset({(403, "CALLBACK_NOT_REGISTERED")}),
    shared_secret_header=_SHARED_SECRET_HEADER,
)

HPL = FamilySpec(
    name="hpl",
    title="Hyper Precise Location",
    base="/api/hyper-precise/v1/callbacks",
    list_account=query("accountNumber"),
    register_account=query("accountNumber"),
    # [SDK≠DOCS] the SDK 2.0.0 sends ?service=, the docs show ?name=: the SDK's is sent.
    delete_service=query("service"),
    # An array per SDK-md and the docs; one object is read as a one-item list too.
    list_shape=ListShape.EITHER,
    empty_bodies=frozenset({b"", b"null"}),  # [UNCERTAIN] undocumented
    # [SDK≠DOCS] the SDK model reads accountName, the docs' examples say aname: both read.
    item_account=("accountName", "aname"),
    item_service=("name",),
    # [UNCERTAIN] names look free-form ("the name to be assigned to the listener service").
    name_prefix="HPL:",
    aliases=("HPL", "HyperPreciseLocation", "HyperPrecise"),
)

FOTA_V3 = FamilySpec(
    name="fota-v3",
    title="Software Management (FOTA v3)",
    aliases=("FOTAv3", "Fota3", "SoftwareManagementV3"),
    base="/api/fota/v3/callbacks",
    delete_service=NOWHERE,
    service_field=None,  # one URL per account, no service name on the wire
    update_method="PUT",
    list_shape=ListShape.OBJECT,  # the SDK's CallbackSummary {url}
    empty_bodies=frozenset({b"", b"null"}),  # docs: "The response body will be empty"
    item_account=(),
    item_service=(),
)

# v3's shape under its own path; its empty bodies are [UNCERTAIN for v2] (v3's wording
# assumed).
FOTA_V2 = replace(
    FOTA_V3,
    name="fota-v2",
    title="Software Management (FOTA v2)",
    aliases=("FOTAv2", "Fota2", "SoftwareManagementV2"),
    base="/api/fota/v2/callbacks",
    content_type="*/*",  # SDK: POST and PUT send Content-Type */* (families §6)
)

# Declaration order is the order families are read and merged in (deterministic plans).
FAMILIES: tuple[FamilySpec, ...] = (M2M, FOTA, LOCATION, DIAGNOSTICS, HPL, FOTA_V2, FOTA_V3)

# What an account without a ``manage:`` list reads besides the families it declares: the
# two families version-1 files always meant, so such a file plans as it always did.
DEFAULT_MANAGED: tuple[FamilySpec, ...] = (M2M, FOTA)

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
