"""The simulator's own table of ThingSpace callback families.

Written from the team's API notes (``thingspace-api.md``, and the key table in
``thingspace-families.md`` §8), never from the product's catalog: the simulator is the
oracle the product's client is tested against, and a table shared by both would mirror
a wrong entry into the oracle, so every test would still pass.

One :class:`Family` entry says everything that differs between families on the wire;
the handlers in :mod:`reconciler.simulator.callbacks` read only the entry, never a
family's name. All seven families of the notes are served: M2M, FOTA v1, Device
Location, Diagnostics, Hyper Precise Location (HPL), FOTA v2 and FOTA v3. The fields cover
their variants (account in the query or the body, no service name, ``endpoint`` for
``url``, single-object lists, PUT, ``*/*`` Content-Type, a shared-secret header, free-form
service names, HPL's error body).

Where the notes mark a point [UNCERTAIN] or [SDK≠DOCS], an entry accepts every documented
variant when reading a request and answers in the form of the SDK
(``sdksio-verizon-apis-sdk`` 2.0.0); the comment at the entry names the source followed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    CREATED_ON = "createdOn"  # RFC 3339, stored at registration (kept by a PUT/re-POST)
    SUCCESS = "success"  # the constant true


# The keys of a JSON object answer, in order, and what fills each; () answers an empty body.
Shape = tuple[tuple[str, Item], ...]

# The optional request-body fields the simulator can store (a family accepts a subset):
# strings, except httpHeaders, an object of strings.
OPTIONAL_FIELDS = ("username", "password", "httpHeaders")

JSON = "application/json"
ANY = "*/*"  # what the SDK sends on some calls whose body is JSON all the same

# The response header carrying the HMAC shared secret on Device Location and Diagnostics
# register. [UNCERTAIN] No source names it: the docs only say "the response to this
# request ... will contain the secret key in the header", and the SDK neither models nor
# exposes it. This name is the simulator's own invention; change it here, once, when the
# real name is known (the tests read this constant).
SHARED_SECRET_HEADER = "X-Callback-Shared-Secret"


class ErrorStyle(Enum):
    """The JSON body a family's errors carry (the status code is the same either way)."""

    ERROR_CODE = "errorCode"  # {"errorCode", "errorMessage"}: all but HPL
    HPL = "responseCode"  # {"responseCode", "message", "fault": {"code", "message", ...}}


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

    Free-form names (``free_names``): the family takes any non-empty name (``services``
    then only lists examples). The store keys an account's registrations by a string; a
    free-form name could be any other family's, so such a family stores under
    ``key_prefix + name`` ("HPL:BullseyeReporting"), a namespace of its own. Fixed-name
    families store the bare name, as state files always did, so old files still load.
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
    free_names: bool = False
    key_prefix: str = ""  # the store's namespace for a free_names family
    error_style: ErrorStyle = ErrorStyle.ERROR_CODE

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
        if self.free_names != bool(self.key_prefix):
            problems.append("free_names goes with a key_prefix, and only there")
        if self.free_names and self.service_field is None:
            problems.append("free_names needs service names")
        if not self.list_is_array and len(self.services) != 1:
            problems.append("a single-object list needs one registration per account")
        if problems:
            raise ValueError(f"family {self.label}: " + "; ".join(problems))

    @property
    def callbacks_path(self) -> str:
        return self.base + "/callbacks"

    def store_key(self, service: str) -> str:
        """The key the store keeps ``service`` under (see "Free-form names")."""
        return self.key_prefix + service

    def service_of(self, key: str) -> str:
        """The service name a store key of this family stands for."""
        return key[len(self.key_prefix) :]


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
    # [SDK≠DOCS] the SDK's FotaV1SuccessResult reads {"success"} (families §5): the SDK's
    # form is answered, as for every family's deregister.
    deregister_reply=(("success", Item.SUCCESS),),
)


# Device Location: families §2 (SDK ctl/device_location_callbacks_controller.py).
DEVICE_LOCATION = Family(
    label="Device Location",
    base="/api/loc/v1",
    services=("Location", "DeviceLocation"),  # the SDK's CallbackServiceNameEnum
    account_in=Place.PATH,
    content_types=frozenset({JSON, ANY}),  # the SDK registers with Content-Type */*
    # [SDK≠DOCS] The docs list {accountName, serviceName, url, ...}; the SDK model (and
    # SDK-md's example) read {name, url}: the SDK's form is answered.
    list_item=(("name", Item.SERVICE), ("url", Item.URL)),
    empty_list_body=b"",  # docs: "The response body will be empty if there are no ..."
    # [UNCERTAIN] not in the docs' excerpts: SDK-md's {"account", "name"} is followed.
    register_reply=(("account", Item.ACCOUNT), ("name", Item.SERVICE)),
    # [SDK≠DOCS] the docs' text (and the SDK model) say {"success": true}, its example
    # {accountName, serviceName}: the SDK's {success} is answered.
    deregister_reply=(("success", Item.SUCCESS),),
    secret_header=SHARED_SECRET_HEADER,
)

_DIAGNOSTICS_CALLBACK: Shape = (
    ("accountName", Item.ACCOUNT),
    ("serviceName", Item.SERVICE),
    ("endpoint", Item.URL),
    ("createdOn", Item.CREATED_ON),
    ("httpHeaders", Item.HTTP_HEADERS),
)

# Device Diagnostics: families §3 (SDK ctl/diagnostics_callbacks_controller.py). The
# account is in the query on GET/DELETE and in the body on POST; POST also "updates"
# (re-POST replaces), there is no PUT.
DIAGNOSTICS = Family(
    label="Diagnostics",
    base="/api/diagnostics/v1",
    # [UNCERTAIN] the vocabulary: SDK-md's register example is the only real value.
    services=("Diagnostics",),
    account_in=Place.BODY,
    account_key="accountName",
    service_field="serviceName",
    deregister_service=Place.QUERY,
    service_params=("serviceName",),
    url_field="endpoint",
    optional_fields=frozenset({"httpHeaders"}),
    content_types=frozenset({JSON, ANY}),  # the SDK registers with Content-Type */*
    list_item=_DIAGNOSTICS_CALLBACK,  # an array, as SDK-md says (the docs show one object)
    empty_list_body=b"[]",  # [UNCERTAIN] undocumented; the SDK reads [] and empty alike
    register_reply=_DIAGNOSTICS_CALLBACK,
    deregister_reply=_DIAGNOSTICS_CALLBACK,  # SDK-md: the deleted registration
    secret_header=SHARED_SECRET_HEADER,
)

# Hyper Precise Location: families §4 (SDK ctl/hyper_precise_location_callbacks_controller.py).
HPL = Family(
    label="HPL",
    base="/api/hyper-precise/v1",
    # [UNCERTAIN] the docs call the name "the name to be assigned to the listener
    # service": free-form, so any name is taken; SDK-md's example is BullseyeReporting.
    services=("BullseyeReporting",),
    free_names=True,
    key_prefix="HPL:",
    account_in=Place.QUERY,
    account_key="accountNumber",
    deregister_service=Place.QUERY,
    # [SDK≠DOCS] the SDK 2.0.0 sends ?service=, the docs show ?name=: both are read.
    service_params=("service", "name"),
    # [SDK≠DOCS] the docs' list examples say "aname", the SDK model reads "accountName".
    list_item=(("accountName", Item.ACCOUNT), ("name", Item.SERVICE), ("url", Item.URL)),
    empty_list_body=b"[]",  # [UNCERTAIN] undocumented; the SDK reads [] and empty alike
    register_reply=(("accountName", Item.ACCOUNT), ("name", Item.SERVICE)),
    # [SDK≠DOCS] the SDK expects no content, the docs show {responseCode, message}.
    deregister_reply=(),
    error_style=ErrorStyle.HPL,
)

_URL_ONLY: Shape = (("url", Item.URL),)
_SUCCESS: Shape = (("success", Item.SUCCESS),)

# Software Management v3: families §7. One URL per account and no service name anywhere,
# so the store keeps it under an internal name of its own ("FotaV3" is no API value).
# PUT on an account with nothing registered is [UNCERTAIN]: a 400, as deregistering it.
FOTA_V3 = Family(
    label="FOTA v3",
    base="/api/fota/v3",
    services=("FotaV3",),
    account_in=Place.PATH,
    service_field=None,
    deregister_service=Place.NONE,
    update=True,
    list_item=_URL_ONLY,
    list_is_array=False,  # the SDK's CallbackSummary: one object
    empty_list_body=b"",  # docs: "The response body will be empty if there are no ..."
    register_reply=_URL_ONLY,
    deregister_reply=_SUCCESS,
)

# Software Management v2: families §6; v3's shape under its own path, but the SDK's POST
# and PUT send */*. Its empty body is [UNCERTAIN for v2]: v3's documented one assumed.
FOTA_V2 = replace(
    FOTA_V3,
    label="FOTA v2",
    base="/api/fota/v2",
    services=("FotaV2",),
    content_types=frozenset({JSON, ANY}),
)


class FamilyTable:
    """The families served, and which family owns each service name."""

    def __init__(self, families: tuple[Family, ...]) -> None:
        if not families:
            raise ValueError("a family table needs at least one family")
        self.families = families
        owners: dict[str, Family] = {}
        prefixes = [f.key_prefix for f in families if f.key_prefix]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("two families share a key_prefix")
        self._namespaced = tuple(f for f in families if f.key_prefix)
        for family in families:
            if family.free_names:  # its names live in its own namespace of the store
                continue
            for service in family.services:
                if service in owners:  # one name in two families: which API would list it?
                    other = owners[service].label
                    raise ValueError(f"service {service!r} is in both {other} and {family.label}")
                owners[service] = family
        self._owners = MappingProxyType(owners)

    def family_of(self, service: str) -> Family | None:
        """The family whose API serves ``service``; None for a name no family lists."""
        return self._owners.get(service)

    def lister_of(self, key: str) -> Family:
        """The family whose list shows the store key ``key``. A name no family knows (a
        state file from an older table) lists under the first family, so it stays visible
        and can be deregistered there."""
        for family in self._namespaced:
            if key.startswith(family.key_prefix):
                return family
        return self._owners.get(key, self.families[0])


# M2M first: its names are open-ended (the SDK has no enum), so it lists unknown ones.
FAMILIES = FamilyTable((M2M, FOTA_V1, DEVICE_LOCATION, DIAGNOSTICS, HPL, FOTA_V2, FOTA_V3))
