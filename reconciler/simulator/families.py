"""The simulator's own table of ThingSpace callback families.

Written from the team's API notes (``thingspace-api.md``, and the key table in
``thingspace-families.md`` §8), never from the product's catalog: the simulator is the
oracle the product's client is tested against, and a table shared by both would mirror
a wrong entry into the oracle, so every test would still pass.

One :class:`Family` entry says everything that differs between families on the wire;
the handlers in :mod:`reconciler.simulator.callbacks` read only the entry, never a
family's name. Two families are served today (M2M and FOTA v1). The notes describe five
more (Device Location, Diagnostics, HPL, FOTA v2, FOTA v3); each should need only an
entry here, which is why the fields cover their variants (account in the query or the
body, no service name, ``endpoint`` for ``url``, single-object lists, PUT, ``*/*``
Content-Type, a shared-secret header).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType


class Place(Enum):
    """Where a request carries the account, or the service to deregister."""

    PATH = "path"  # a path segment: /callbacks/{account}, .../{account}/name/{service}
    QUERY = "query"  # a query parameter
    BODY = "body"  # account only: the JSON body's field on POST/PUT, the query on GET/DELETE
    NONE = "none"  # service only: not carried; the family has one registration per account


class Item(Enum):
    """What fills one key of a JSON answer (list item, register or deregister reply)."""

    ACCOUNT = "account"
    SERVICE = "service"
    URL = "url"
    USERNAME = "username"  # "" when not set
    PASSWORD = "password"  # "" when not set
    HTTP_HEADERS = "httpHeaders"  # {} when not set
    SUCCESS = "success"  # the constant true


# The keys of a JSON object answer, in order, and what fills each; () answers an empty body.
Shape = tuple[tuple[str, Item], ...]

# The optional request-body fields the simulator can store (a family accepts a subset):
# strings, except httpHeaders, an object of strings.
OPTIONAL_FIELDS = ("username", "password", "httpHeaders")

JSON = "application/json"


@dataclass(frozen=True, kw_only=True)
class Family:
    """One callback family's wire contract, as the simulator serves it.

    Routing: the callbacks live at ``base + "/callbacks"``. With ``account_in`` PATH the
    collection is ``.../callbacks/{account}``, else ``.../callbacks`` with the account in
    ``account_key`` (query parameter, or for BODY the body field on POST/PUT). GET lists,
    POST registers (replacing the same service), PUT (only if ``update``) replaces an
    existing registration (the notes leave PUT-with-nothing-registered open: a 400 here,
    like deregistering what is not registered). DELETE deregisters: at
    ``{collection}/name/{service}`` when ``deregister_service`` is PATH, else on the
    collection, with the service in one of ``service_params`` (QUERY) or nowhere (NONE).

    Services: a registration names its service in the body field ``service_field``;
    a family whose requests name none (``service_field`` None, ``deregister_service``
    NONE) keeps its one registration per account under ``services[0]``. A name listed by
    another family is refused with a hint to that family's ``base``.
    """

    label: str  # how messages name the family: "M2M", "FOTA"
    base: str  # the API base path, e.g. "/api/m2m/v1"
    services: tuple[str, ...]
    account_in: Place
    account_key: str = ""  # the query parameter / body field (QUERY, BODY)
    service_field: str | None = "name"
    deregister_service: Place = Place.PATH
    service_params: tuple[str, ...] = ()  # accepted query parameters, first present wins
    url_field: str = "url"
    optional_fields: frozenset[str] = frozenset()  # those of OPTIONAL_FIELDS it accepts
    # Body keys answered with a 400 rather than ignored (any other unknown key is ignored,
    # as the SDK's models ignore keys they do not know).
    refused_fields: tuple[str, ...] = ()
    content_types: frozenset[str] = frozenset({JSON})  # accepted request Content-Types
    update: bool = False  # PUT on the collection
    list_item: Shape
    list_is_array: bool = True  # False: the one registration as a single object
    empty_list_body: bytes  # the 200 body of a list with nothing registered
    register_reply: Shape  # also the PUT reply
    deregister_reply: Shape
    secret_header: str | None = None  # register answers a fresh shared secret in it

    def __post_init__(self) -> None:
        # A contradictory entry would make the handlers guess: refuse it at import.
        problems = []
        if not self.services:
            problems.append("no services")
        if self.account_in is Place.NONE:
            problems.append("every request names an account")
        if (self.account_in is Place.PATH) == bool(self.account_key):
            problems.append("account_key goes with a QUERY or BODY account, and only there")
        if (self.service_field is None) != (self.deregister_service is Place.NONE):
            problems.append("a family without service_field deregisters with Place.NONE")
        if self.service_field is None and len(self.services) != 1:
            problems.append("a family without service names stores under exactly one")
        if (self.deregister_service is Place.QUERY) != bool(self.service_params):
            problems.append("service_params go with a QUERY deregister")
        if self.deregister_service is Place.BODY:
            problems.append("a DELETE has no body")
        if not self.optional_fields <= set(OPTIONAL_FIELDS):
            problems.append(f"optional_fields beyond {OPTIONAL_FIELDS}")
        if self.optional_fields & set(self.refused_fields):
            problems.append("a field is either optional or refused")
        if not self.list_is_array and len(self.services) != 1:
            problems.append("a single-object list needs one registration per account")
        if problems:
            raise ValueError(f"family {self.label}: " + "; ".join(problems))

    @property
    def callbacks_path(self) -> str:
        return self.base + "/callbacks"


_ACCOUNT_SERVICE: Shape = (("accountName", Item.ACCOUNT), ("serviceName", Item.SERVICE))
_ANAME_NAME_URL: Shape = (("aname", Item.ACCOUNT), ("name", Item.SERVICE), ("url", Item.URL))

# Connectivity Management: thingspace-api.md "M2M" (seeds 001, 002), families §1.
M2M = Family(
    label="M2M",
    base="/api/m2m/v1",
    # Seed 001's thirteen, QoS (seed 002), and NiddService from the public deregister page
    # (which also spells "AlertsService"; the seed's "AlertService" is the one kept).
    services=(
        "AlertService",
        "CarrierService",
        "DevicePRLInformation",
        "DeviceProfileService",
        "DeviceService",
        "DeviceSuspensionStatus",
        "DeviceUsage",
        "EnhancedConnectivityService",
        "ExternalProvisioningChanges",
        "PromoChanges",
        "ResumeTrackingNotification",
        "SMSDeliveryConfirmation",
        "StateService",
        "QoS",
        "NiddService",
    ),
    account_in=Place.PATH,
    optional_fields=frozenset({"username", "password"}),
    # Every item carries all five fields, "" when unset (the SDK's model has them all), so
    # a client can tell "no password" from "not returned".
    list_item=(
        *_ACCOUNT_SERVICE,
        ("url", Item.URL),
        ("username", Item.USERNAME),
        ("password", Item.PASSWORD),
    ),
    empty_list_body=b"[]",
    register_reply=_ACCOUNT_SERVICE,
    deregister_reply=_ACCOUNT_SERVICE,
)

# Software Management v1: thingspace-api.md "FOTA v1" (seed 000), families §5. The
# docs' shapes ({aname, name, url}) are followed where the SDK model differs.
FOTA_V1 = Family(
    label="FOTA",
    base="/api/fota/v1",
    services=("Fota",),
    account_in=Place.PATH,
    # The notes give the body as {name, url}; the SDK's model has optional username and
    # password. Refusing them catches a client that sends FOTA an M2M-style body.
    refused_fields=("username", "password"),
    list_item=_ANAME_NAME_URL,
    empty_list_body=b"",  # "an empty body (not []) when nothing is registered"
    register_reply=_ANAME_NAME_URL,
    deregister_reply=_ANAME_NAME_URL,
)


class FamilyTable:
    """The families served, and which family owns each service name."""

    def __init__(self, families: tuple[Family, ...]) -> None:
        if not families:
            raise ValueError("a family table needs at least one family")
        self.families = families
        owners: dict[str, Family] = {}
        for family in families:
            for service in family.services:
                if service in owners:  # one name in two families: which API would list it?
                    other = owners[service].label
                    raise ValueError(f"service {service!r} is in both {other} and {family.label}")
                owners[service] = family
        self._owners = MappingProxyType(owners)

    def family_of(self, service: str) -> Family | None:
        """The family whose API serves ``service``; None for a name no family lists."""
        return self._owners.get(service)

    def lister_of(self, service: str) -> Family:
        """The family whose list shows a stored ``service``. A name no family knows (a
        state file from an older table) lists under the first family, so it stays visible
        and can be deregistered there."""
        return self._owners.get(service, self.families[0])


# M2M first: its names are open-ended (the SDK has no enum), so it lists unknown ones.
FAMILIES = FamilyTable((M2M, FOTA_V1))
