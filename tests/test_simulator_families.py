"""The simulator's family table: independent of the product, true to the notes, generic.

* The simulator imports nothing from ``reconciler`` outside ``reconciler.simulator``: it is
  the oracle the product's client is tested against.
* Its table says what the team's API notes say (``thingspace-api.md`` and the key table
  of ``thingspace-families.md``), transcribed here by hand: the facts below are quoted
  from the notes, never read from the simulator or the product.
* The handlers serve any entry: test-only entries shaped like the families not served yet
  (Diagnostics, FOTA v2, HPL) exercise what M2M and FOTA v1 do not.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from reconciler.simulator import SimulatorCredentials
from reconciler.simulator.api import Api
from reconciler.simulator.callbacks import FamilyApi
from reconciler.simulator.families import (
    FAMILIES,
    FOTA_V1,
    JSON,
    M2M,
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


def test_every_served_service_has_exactly_one_family() -> None:
    assert FAMILIES.families == (M2M, FOTA_V1)
    assert FAMILIES.family_of("QoS") is M2M and FAMILIES.family_of("Fota") is FOTA_V1
    assert FAMILIES.family_of("AlertsService") is None
    assert FAMILIES.lister_of("SomeRetiredService") is M2M


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
    ],
)
def test_a_contradictory_entry_is_refused_at_once(changes: dict[str, Any]) -> None:
    fields = {**M2M.__dict__, **changes}
    with pytest.raises(ValueError, match="family M2M"):
        Family(**fields)


def test_a_service_in_two_families_is_refused() -> None:
    with pytest.raises(ValueError, match="'Fota' is in both FOTA and"):
        FamilyTable((FOTA_V1, Family(**{**FOTA_V1.__dict__, "label": "FOTA2"})))


# --- the machinery on entries not served yet --------------------------------------------

URL, SUCCESS = Item.URL, Item.SUCCESS
DIAG_ITEM = (
    ("accountName", Item.ACCOUNT),
    ("serviceName", Item.SERVICE),
    ("endpoint", Item.URL),
    ("httpHeaders", Item.HTTP_HEADERS),
)
# Shaped like Diagnostics (families §3): account in the query, or the body on POST.
DIAG = Family(
    label="DIAG",
    base="/api/diag/v1",
    services=("Diagnostics",),
    account_in=Place.BODY,
    account_key="accountName",
    service_field="serviceName",
    deregister_service=Place.QUERY,
    service_params=("serviceName",),
    url_field="endpoint",
    optional_fields=frozenset({"httpHeaders"}),
    content_types=frozenset({JSON, "*/*"}),
    list_item=DIAG_ITEM,
    empty_list_body=b"[]",
    register_reply=DIAG_ITEM,
    deregister_reply=DIAG_ITEM,
    secret_header="X-Test-Shared-Secret",
)
# Shaped like FOTA v2 (families §6): no service name anywhere, PUT, a single object.
ONE_URL = Family(
    label="ONEURL",
    base="/api/oneurl/v2",
    services=("OneUrl",),
    account_in=Place.PATH,
    service_field=None,
    deregister_service=Place.NONE,
    update=True,
    content_types=frozenset({JSON, "*/*"}),
    list_item=(("url", URL),),
    list_is_array=False,
    empty_list_body=b"",
    register_reply=(("url", URL),),
    deregister_reply=(("success", SUCCESS),),
)
# Shaped like HPL (families §4): account in the query as accountNumber, service by
# either of two query names, and no content on deregister.
QUERIED = Family(
    label="QUERIED",
    base="/api/queried/v1",
    services=("Bullseye",),
    account_in=Place.QUERY,
    account_key="accountNumber",
    deregister_service=Place.QUERY,
    service_params=("service", "name"),
    list_item=(("accountName", Item.ACCOUNT), ("name", Item.SERVICE), ("url", URL)),
    empty_list_body=b"[]",
    register_reply=(("accountName", Item.ACCOUNT), ("name", Item.SERVICE)),
    deregister_reply=(),
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
