"""The simulator's family table: independent of the product, true to the notes, generic.

* The simulator imports nothing from ``reconciler`` outside ``reconciler.simulator``: it is
  the oracle the product's client is tested against.
* Its table says what the team's API notes say (``thingspace-api.md`` and the key table
  of ``thingspace-families.md``), transcribed here by hand: the facts below are quoted
  from the notes, never read from the simulator or the product.
* The handlers serve any entry: test-only entries shaped like Diagnostics, FOTA v2 and HPL
  exercise the machinery apart from the served table.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import pytest

from reconciler.simulator import SimulatorCredentials
from reconciler.simulator.api import Api
from reconciler.simulator.callbacks import FamilyApi
from reconciler.simulator.families import (
    DEVICE_LOCATION,
    DIAGNOSTICS,
    FAMILIES,
    FOTA_V1,
    FOTA_V2,
    FOTA_V3,
    HPL,
    JSON,
    M2M,
    SHARED_SECRET_HEADER,
    ErrorStyle,
    Family,
    FamilyTable,
    Item,
    Place,
)
from reconciler.simulator.faults import FaultController
from reconciler.simulator.state import AuthState, RegistrationStore, RequestLog, StoredCallback
from reconciler.simulator.wire import Request, Response
from tests.e2e_support import REPO

SIMULATOR = REPO / "reconciler" / "simulator"

# --- independence ------------------------------------------------------------------------


def product_imports(source: str, module: str) -> list[str]:
    """Modules of ``reconciler`` outside ``reconciler.simulator`` that ``source`` (the
    text of ``module``) imports anywhere: top level, functions, ``if TYPE_CHECKING:``,
    relative imports and ``import_module``/``__import__`` calls with a literal name."""
    package = module.rsplit(".", 1)[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: climb from this module's package
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{anchor}.{base}" if base else anchor
            # `from reconciler import core` imports reconciler.core
            names = [f"{base}.{alias.name}" for alias in node.names] if base else []
            names.append(base)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                names = [str(first.value)]
        for name in names:
            inside = name == "reconciler.simulator" or name.startswith("reconciler.simulator.")
            if (name == "reconciler" or name.startswith("reconciler.")) and not inside:
                found.append(name)
    return found


def test_the_import_check_catches_what_it_must() -> None:
    module = "reconciler.simulator.example"
    caught = {
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from reconciler.core.model import Family\n": "reconciler.core.model",
        "def f():\n    import reconciler.core.errors\n": "reconciler.core.errors",
        "from .. import core\n": "reconciler.core",
        "from ..thingspace.credentials import Credentials\n": "reconciler.thingspace.credentials",
        "from reconciler import __version__\n": "reconciler.__version__",
        "import importlib\nimportlib.import_module('reconciler.core.catalog')\n": (
            "reconciler.core.catalog"
        ),
    }
    for source, name in caught.items():
        assert name in product_imports(source, module), source
    allowed = "from . import wire\nfrom reconciler.simulator.state import RequestLog\nimport json\n"
    assert product_imports(allowed, module) == []


def test_the_simulator_imports_nothing_from_the_product() -> None:
    files = sorted(SIMULATOR.glob("*.py"))
    assert len(files) >= 10  # the walk really sees the package
    found = {
        path.name: names
        for path in files
        if (names := product_imports(path.read_text("utf-8"), f"reconciler.simulator.{path.stem}"))
    }
    assert found == {}


def test_importing_the_simulator_loads_no_product_module() -> None:
    code = (
        "import sys, reconciler.simulator\n"
        "print(sorted(m for m in sys.modules if m.startswith('reconciler')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.replace("'", '"'))
    assert "reconciler.simulator.families" in loaded
    assert [m for m in loaded if not m.startswith("reconciler.simulator")] == ["reconciler"]


# --- the table against the notes ---------------------------------------------------------


def served_routes(family: Family) -> set[str]:
    """``METHOD /path`` for every route the handlers build from ``family``."""
    api = FamilyApi(
        family,
        table=FAMILIES,
        store=RegistrationStore(None),
        check_auth=lambda req: None,
        accounts=None,
        faults=FaultController(),
    )
    return {f"{m} /" + "/".join(pattern) for pattern, methods in api.routes for m in methods}


# thingspace-api.md: the M2M table and service list (seeds 001, 002, the deregister page).
NOTES_M2M_SERVICES = {
    "AlertService", "CarrierService", "DevicePRLInformation", "DeviceProfileService",
    "DeviceService", "DeviceSuspensionStatus", "DeviceUsage", "EnhancedConnectivityService",
    "ExternalProvisioningChanges", "PromoChanges", "ResumeTrackingNotification",
    "SMSDeliveryConfirmation", "StateService", "QoS", "NiddService",
}  # fmt: skip


def test_m2m_entry_says_what_the_notes_say() -> None:
    assert served_routes(M2M) == {
        "GET /api/m2m/v1/callbacks/{account}",
        "POST /api/m2m/v1/callbacks/{account}",
        "DELETE /api/m2m/v1/callbacks/{account}/name/{service}",
    }  # no PUT: "re-registering replaces the URL. No update/PUT."
    assert set(M2M.services) == NOTES_M2M_SERVICES
    assert [k for k, _ in M2M.list_item] == [
        "accountName", "serviceName", "url", "username", "password"
    ]  # fmt: skip
    assert [k for k, _ in M2M.register_reply] == ["accountName", "serviceName"]
    assert [k for k, _ in M2M.deregister_reply] == ["accountName", "serviceName"]
    assert M2M.optional_fields == {"username", "password"}
    assert M2M.content_types == {"application/json"} and M2M.secret_header is None
    assert M2M.empty_list_body in (b"", b"[]")  # the notes leave it open


def test_fota_v1_entry_says_what_the_notes_say() -> None:
    assert served_routes(FOTA_V1) == {
        "GET /api/fota/v1/callbacks/{account}",
        "POST /api/fota/v1/callbacks/{account}",
        "DELETE /api/fota/v1/callbacks/{account}/name/{service}",
    }
    assert FOTA_V1.services == ("Fota",)
    # "JSON array of {aname, name, url}; an empty body (not []) when nothing is registered"
    assert [k for k, _ in FOTA_V1.list_item] == ["aname", "name", "url"]
    assert FOTA_V1.list_is_array and FOTA_V1.empty_list_body == b""
    assert [k for k, _ in FOTA_V1.register_reply] == ["aname", "name", "url"]
    assert FOTA_V1.content_types == {"application/json"} and not FOTA_V1.update


def keys(shape: tuple[tuple[str, Item], ...]) -> list[str]:
    return [key for key, _ in shape]


def test_device_location_entry_says_what_the_notes_say() -> None:
    # families §2 and §8: path account, service in the path on DELETE.
    assert served_routes(DEVICE_LOCATION) == {
        "GET /api/loc/v1/callbacks/{account}",
        "POST /api/loc/v1/callbacks/{account}",
        "DELETE /api/loc/v1/callbacks/{account}/name/{service}",
    }
    assert DEVICE_LOCATION.services == ("Location", "DeviceLocation")  # CallbackServiceNameEnum
    assert "*/*" in DEVICE_LOCATION.content_types  # "Content-Type */*" on register
    assert keys(DEVICE_LOCATION.list_item) == ["name", "url"]  # the SDK's model
    assert DEVICE_LOCATION.list_is_array and DEVICE_LOCATION.empty_list_body == b""  # "empty"
    assert keys(DEVICE_LOCATION.register_reply) == ["account", "name"]  # SDK-md
    assert keys(DEVICE_LOCATION.deregister_reply) == ["success"]
    assert DEVICE_LOCATION.secret_header == SHARED_SECRET_HEADER  # "secret key in the header"
    assert not DEVICE_LOCATION.update and DEVICE_LOCATION.url_field == "url"


def test_diagnostics_entry_says_what_the_notes_say() -> None:
    # families §3: no account in the path; query on GET/DELETE, body on POST.
    assert served_routes(DIAGNOSTICS) == {
        "GET /api/diagnostics/v1/callbacks",
        "POST /api/diagnostics/v1/callbacks",
        "DELETE /api/diagnostics/v1/callbacks",
    }
    assert DIAGNOSTICS.account_in is Place.BODY and DIAGNOSTICS.account_key == "accountName"
    assert DIAGNOSTICS.service_field == "serviceName"
    assert DIAGNOSTICS.deregister_service is Place.QUERY
    assert DIAGNOSTICS.service_params == ("serviceName",)  # ?accountName=&serviceName=
    assert DIAGNOSTICS.url_field == "endpoint"  # "The URL field is endpoint, not url"
    assert DIAGNOSTICS.optional_fields == {"httpHeaders"}
    callback = ["accountName", "serviceName", "endpoint", "createdOn", "httpHeaders"]
    assert keys(DIAGNOSTICS.list_item) == callback
    assert keys(DIAGNOSTICS.register_reply) == callback
    assert keys(DIAGNOSTICS.deregister_reply) == callback
    assert DIAGNOSTICS.empty_list_body in (b"", b"[]")  # the notes leave it open
    assert "*/*" in DIAGNOSTICS.content_types
    assert DIAGNOSTICS.secret_header == SHARED_SECRET_HEADER
    assert not DIAGNOSTICS.update  # POST "updates"


def test_hpl_entry_says_what_the_notes_say() -> None:
    # families §4: account in the query as accountNumber; service or name on DELETE.
    assert served_routes(HPL) == {
        "GET /api/hyper-precise/v1/callbacks",
        "POST /api/hyper-precise/v1/callbacks",
        "DELETE /api/hyper-precise/v1/callbacks",
    }
    assert HPL.account_in is Place.QUERY and HPL.account_key == "accountNumber"
    assert set(HPL.service_params) == {"service", "name"}
    assert HPL.service_params[0] == "service"  # what the SDK sends; named in messages
    assert keys(HPL.list_item) == ["accountName", "name", "url"]  # the SDK's CallbackCreated
    assert keys(HPL.register_reply) == ["accountName", "name"]
    assert HPL.deregister_reply == ()  # the SDK: "no content"
    assert HPL.empty_list_body in (b"", b"[]")
    assert HPL.content_types == {"application/json"} and HPL.secret_header is None
    assert HPL.free_names and HPL.key_prefix  # "the name to be assigned": free-form
    assert HPL.error_style is ErrorStyle.HPL  # {responseCode, message, fault}


@pytest.mark.parametrize(("family", "version"), [(FOTA_V2, "v2"), (FOTA_V3, "v3")])
def test_fota_v2_and_v3_entries_say_what_the_notes_say(family: Family, version: str) -> None:
    # families §6, §7: one URL per account, no service anywhere, PUT, a single object.
    assert served_routes(family) == {
        f"{method} /api/fota/{version}/callbacks/{{account}}"
        for method in ("GET", "POST", "PUT", "DELETE")
    }
    assert family.service_field is None and family.deregister_service is Place.NONE
    assert keys(family.list_item) == ["url"] and not family.list_is_array
    assert family.empty_list_body == b""  # "The response body will be empty"
    assert keys(family.register_reply) == ["url"]
    assert keys(family.deregister_reply) == ["success"]
    assert family.update and family.secret_header is None
    # v2 registers and updates with Content-Type */*, v3 with application/json.
    assert ("*/*" in family.content_types) == (version == "v2")


def test_every_served_service_has_exactly_one_family() -> None:
    assert FAMILIES.families == (M2M, FOTA_V1, DEVICE_LOCATION, DIAGNOSTICS, HPL, FOTA_V2, FOTA_V3)
    assert FAMILIES.family_of("QoS") is M2M and FAMILIES.family_of("Fota") is FOTA_V1
    assert FAMILIES.family_of("Location") is DEVICE_LOCATION
    assert FAMILIES.family_of("Diagnostics") is DIAGNOSTICS
    assert FAMILIES.family_of("AlertsService") is None
    assert FAMILIES.family_of("BullseyeReporting") is None  # HPL's names are its own
    assert FAMILIES.lister_of("SomeRetiredService") is M2M
    assert FAMILIES.lister_of(HPL.store_key("DeviceUsage")) is HPL
    assert FAMILIES.lister_of("DeviceUsage") is M2M
    assert FAMILIES.lister_of(FOTA_V2.store_key(FOTA_V2.services[0])) is FOTA_V2
    assert len({f.base for f in FAMILIES.families}) == len(FAMILIES.families)


@pytest.mark.parametrize(
    "changes",
    [
        {"account_key": "accountName"},  # a path account has no key
        {"account_in": Place.QUERY},  # ... and a query account needs one
        {"service_field": None},  # no service names, yet deregistered by path
        {"deregister_service": Place.QUERY},  # no parameter named
        {"optional_fields": frozenset({"token"})},
        {"refused_fields": ("username",), "optional_fields": frozenset({"username"})},
        {"list_is_array": False},  # fifteen services cannot list as one object
        {"free_names": True},  # free-form names need a namespace of their own
        {"key_prefix": "M2M:"},  # ... and a namespace goes with free-form names only
    ],
)
def test_a_contradictory_entry_is_refused_at_once(changes: dict[str, Any]) -> None:
    fields = {**M2M.__dict__, **changes}
    with pytest.raises(ValueError, match="family M2M"):
        Family(**fields)


def test_free_form_names_need_service_names() -> None:
    with pytest.raises(ValueError, match="family FOTA v2: free_names needs service names"):
        Family(**{**FOTA_V2.__dict__, "free_names": True, "key_prefix": "V2:"})


def test_a_service_in_two_families_is_refused() -> None:
    with pytest.raises(ValueError, match="'Fota' is in both FOTA and"):
        FamilyTable((FOTA_V1, Family(**{**FOTA_V1.__dict__, "label": "FOTA2"})))
    with pytest.raises(ValueError, match="share a key_prefix"):
        FamilyTable((HPL, Family(**{**HPL.__dict__, "label": "HPL2", "base": "/x"})))


# --- the machinery, on variations of the table's entries --------------------------------

# The table's entries under paths and names of their own, each with what it changes said,
# so that these tests pin the machinery (the combinations) rather than one entry's values.
URL, SUCCESS = Item.URL, Item.SUCCESS
DIAG_ITEM = (
    ("accountName", Item.ACCOUNT),
    ("serviceName", Item.SERVICE),
    ("endpoint", Item.URL),
    ("httpHeaders", Item.HTTP_HEADERS),
)
# Diagnostics (families §3: account in the query, or the body on POST) without its
# createdOn, so that answers compare whole, and with a shared-secret header of its own.
DIAG = replace(
    DIAGNOSTICS,
    label="DIAG",
    base="/api/diag/v1",
    list_item=DIAG_ITEM,
    register_reply=DIAG_ITEM,
    deregister_reply=DIAG_ITEM,
    secret_header="X-Test-Shared-Secret",
)
# FOTA v2 (families §6): no service name anywhere, PUT, a single object.
ONE_URL = replace(FOTA_V2, label="ONEURL", base="/api/oneurl/v2", services=("OneUrl",))
# HPL (families §4: account in the query as accountNumber, service by either of two query
# names, no content on deregister) with fixed names and the usual error body.
QUERIED = replace(
    HPL,
    label="QUERIED",
    base="/api/queried/v1",
    services=("Bullseye",),
    free_names=False,
    key_prefix="",
    error_style=ErrorStyle.ERROR_CODE,
)
CREDS = SimulatorCredentials("cid", client_secret="csecret", username="u", password="pw")


class InProcess:
    """An :class:`Api` over a test table, called without sockets, already logged in."""

    def __init__(self) -> None:
        self.log = RequestLog()
        self.store = RegistrationStore(None)
        auth = AuthState(CREDS, token_ttl=60, session_idle=60, clock=lambda: 0.0)
        self.api = Api(
            store=self.store,
            auth=auth,
            faults=FaultController(),
            log=self.log,
            accounts=None,
            token_ttl_seconds=60,
            families=FamilyTable((M2M, DIAG, ONE_URL, QUERIED)),
        )
        token = auth.issue_token(CREDS.client_id, CREDS.client_secret)
        session = auth.login(CREDS.username, CREDS.password)[1]
        assert token and session
        self.headers = {"authorization": f"Bearer {token}", "vz-m2m-token": session}

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        content_type: str = JSON,
    ) -> Response:
        headers = dict(self.headers)
        data = b""
        if body is not None:
            headers["content-type"] = content_type
            data = json.dumps(body).encode()
        segments = tuple(path.strip("/").split("/"))
        response = self.api.handle(Request(method, segments, headers, data, query or {}))
        assert response is not None
        return response


@pytest.fixture
def call() -> Iterator[InProcess]:
    yield InProcess()


def answer(response: Response, status: int = 200) -> Any:
    assert response.status == status, response.body
    return json.loads(response.body) if response.body else None


def test_account_in_body_and_query_endpoint_field_and_secret_header(call: InProcess) -> None:
    base = "/api/diag/v1/callbacks"
    registration = {
        "accountName": "A1",
        "serviceName": "Diagnostics",
        "endpoint": "https://d.example.com/x",
        "httpHeaders": {"Authorization": "hook-token"},
        "username": "ignored",  # not a field of this family: ignored, not stored
    }
    r = call("POST", base, registration, content_type="*/*")
    expected = {k: registration[k] for k in ("accountName", "serviceName", "endpoint")}
    expected["httpHeaders"] = {"Authorization": "hook-token"}
    assert answer(r) == expected
    secret = dict(r.headers)["X-Test-Shared-Secret"]
    assert len(secret) == 64 and int(secret, 16) >= 0
    stored = StoredCallback("https://d.example.com/x", http_headers=expected["httpHeaders"])
    assert call.store.registrations("A1") == [("Diagnostics", stored)]
    assert "hook-token" not in repr(call.store.registrations("A1"))
    assert answer(call("GET", base, query={"accountName": "A1"})) == [expected]
    assert answer(call("GET", base, query={"accountName": "A2"})) == []
    assert answer(call("GET", base), 400)["errorMessage"] == (
        "query parameter 'accountName' is required"
    )
    gone = call("DELETE", base, query={"accountName": "A1", "serviceName": "Diagnostics"})
    assert answer(gone) == expected
    assert answer(call("DELETE", base, query={"accountName": "A1"}), 400)
    assert [(r.method, r.account) for r in call.log.records()] == [
        ("POST", "A1"), ("GET", "A1"), ("GET", "A2"), ("GET", None), ("DELETE", "A1"),
        ("DELETE", "A1"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ({"serviceName": "Diagnostics", "endpoint": "https://d/"}, JSON, "'accountName' is"),
        ({"accountName": "A1", "serviceName": "Diagnostics", "url": "https://d/"}, JSON,
         "'endpoint' is required"),
        ({"accountName": "A1", "serviceName": "DeviceUsage", "endpoint": "https://d/"}, JSON,
         "(use /api/m2m/v1)"),
        ({"accountName": "A1", "serviceName": "Diagnostics", "endpoint": "https://d/",
          "httpHeaders": {"X": 1}}, JSON, "'httpHeaders' must be an object of strings"),
        ({"accountName": "A1", "serviceName": "Diagnostics", "endpoint": "https://d/"},
         "text/plain", "Content-Type must be */* or application/json"),
    ],
)  # fmt: skip
def test_body_account_family_refuses_bad_bodies(
    call: InProcess, body: dict[str, Any], content_type: str, message: str
) -> None:
    r = call("POST", "/api/diag/v1/callbacks", body, content_type=content_type)
    assert message in answer(r, 400)["errorMessage"]
    assert call.store.snapshot()["accounts"] == {}


def test_no_service_name_single_object_list_and_put(call: InProcess) -> None:
    path = "/api/oneurl/v2/callbacks/A1"
    assert call("GET", path).body == b""
    refused = answer(call("PUT", path, {"url": "https://a.example.com/"}), 400)
    assert "not registered" in refused["errorMessage"]  # PUT replaces, never creates
    assert answer(call("POST", path, {"url": "https://a.example.com/"}, content_type="*/*")) == {
        "url": "https://a.example.com/"
    }
    assert answer(call("GET", path)) == {"url": "https://a.example.com/"}
    assert answer(call("PUT", path, {"url": "https://b.example.com/"})) == {
        "url": "https://b.example.com/"
    }
    assert answer(call("GET", path)) == {"url": "https://b.example.com/"}
    assert call.store.snapshot()["accounts"] == {
        "A1": {"OneUrl": {"url": "https://b.example.com/"}}
    }
    assert answer(call("DELETE", path)) == {"success": True}
    assert call("GET", path).body == b""
    assert answer(call("DELETE", path), 400)
    # Other families' services stay in their own lists.
    assert answer(call("POST", "/api/m2m/v1/callbacks/A1", {"name": "QoS", "url": "https://q/"}))
    assert call("GET", path).body == b""


def test_account_and_service_in_the_query_and_an_empty_deregister_answer(
    call: InProcess,
) -> None:
    base = "/api/queried/v1/callbacks"
    account = {"accountNumber": "A1"}
    r = call("POST", base, {"name": "Bullseye", "url": "https://h.example.com/"}, query=account)
    assert answer(r) == {"accountName": "A1", "name": "Bullseye"}
    assert answer(call("GET", base, query=account)) == [
        {"accountName": "A1", "name": "Bullseye", "url": "https://h.example.com/"}
    ]
    missing = call("DELETE", base, query=account)
    assert answer(missing, 400)["errorMessage"] == "query parameter 'service' is required"
    r = call("DELETE", base, query={**account, "name": "Bullseye"})  # the second name works
    assert r.status == 200 and r.body == b""
    assert answer(call("GET", base, query=account)) == []


def test_methods_follow_the_entry(call: InProcess) -> None:
    assert answer(call("PUT", "/api/m2m/v1/callbacks/A1", {}), 405)
    assert answer(call("DELETE", "/api/oneurl/v2/callbacks/A1/name/OneUrl"), 404)
    r = call("PATCH", "/api/diag/v1/callbacks")
    assert answer(r, 405) and dict(r.headers)["Allow"] == "DELETE, GET, POST"
