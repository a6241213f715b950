"""The direct path (``reconciler.thingspace.direct``) against real servers on 127.0.0.1:
TLS trust as requests has it (certifi by default, REQUESTS_CA_BUNDLE, a name check),
keep-alive connections the server closed while idle, coded and repeated-header answers,
and the failures the wire words in one line."""

from __future__ import annotations

import gzip
import http.client
import json
import ssl
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from reconciler.core.errors import TscError, UsageError
from reconciler.core.families import M2M
from reconciler.thingspace import direct
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.direct import DirectPool
from reconciler.thingspace.options import ClientOptions
from reconciler.thingspace.transport import Wire
from tests.helpers import serving

CREDS = Credentials(client_id="id", client_secret="secret", username="user", password="pw")
ACCOUNT = "0252012345-00001"
LISTING = [
    {"accountName": ACCOUNT, "serviceName": "CarrierService", "url": "https://h.example.com/x"}
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Api

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.connections.add(self.client_address[1])  # one port a connection
        if self.path.startswith(TOKEN_PATH):
            body: Any = {"access_token": "bearer-1", "expires_in": 3600}
        elif self.path.startswith(LOGIN_PATH):
            body = {"sessionToken": "session-1"}
        else:
            body = LISTING if self.command == "GET" else {}
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/json")]
        coding = self.server.coding
        if coding == "gzip":
            data = gzip.compress(data)
        elif coding == "deflate":
            data = zlib.compress(data)
        elif coding == "raw-deflate":
            packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
            data, coding = packer.compress(data) + packer.flush(), "deflate"
        elif coding == "broken":
            data, coding = b"not gzip at all", "gzip"
        if coding:
            headers.append(("Content-Encoding", coding))
        self.send_response(200)
        for name, value in [*headers, *self.server.extra]:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if self.server.hang_up_after_answer:
            # Keep-alive promised (no "Connection: close"), then closed while idle.
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Api(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.coding = ""
        self.extra: list[tuple[str, str]] = []
        self.hang_up_after_answer = False
        self.connections: set[int] = set()  # client ports

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is not None:
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _serve(context: ssl.SSLContext | None) -> Iterator[_Api]:
    with serving(_Api(context)) as server:
        yield server


@pytest.fixture
def tls_api(ca: trustme.CA) -> Iterator[_Api]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    yield from _serve(context)


@pytest.fixture
def plain_api() -> Iterator[_Api]:
    yield from _serve(None)


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


def _client(endpoint: str) -> ThingSpaceClient:
    return ThingSpaceClient(
        endpoint, CREDS, options=ClientOptions(max_attempts=1), sleep=lambda seconds: None
    )


def _direct_taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    taken: list[bool] = []
    real = Wire._direct

    def spy(self: Wire, prepared: requests.PreparedRequest) -> DirectPool | None:
        found = real(self, prepared)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(Wire, "_direct", spy)
    return taken


def test_https_trusted_through_requests_ca_bundle(
    tls_api: _Api, bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    taken = _direct_taken(monkeypatch)
    with _client(f"https://localhost:{tls_api.server_address[1]}") as api:
        listing = api.listing(ACCOUNT, M2M)
    assert listing["CarrierService"].url == "https://h.example.com/x"
    assert taken and all(taken)
    assert len(tls_api.connections) == 1  # token, login, listing, logout: one connection


def test_a_directory_of_hashed_certificates_is_a_bundle_too(ca: trustme.CA, tmp_path: Path) -> None:
    context = direct.tls_context(str(tmp_path))  # an empty directory: trusts nothing
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_https_untrusted_by_default_is_a_tls_error(tls_api: _Api) -> None:
    # certifi's bundle (requests' default) does not know the test CA.
    with pytest.raises(TscError, match=r"TLS error with localhost:\d+"):
        _client(f"https://localhost:{tls_api.server_address[1]}").listing(ACCOUNT, M2M)


def test_https_to_a_name_the_certificate_does_not_carry_is_a_tls_error(
    ca: trustme.CA, bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("elsewhere.example").configure_cert(context)
    for server in _serve(context):
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
        with pytest.raises(TscError, match=r"TLS error with localhost:\d+"):
            _client(f"https://localhost:{server.server_address[1]}").listing(ACCOUNT, M2M)


def test_without_verification_any_certificate_is_taken(tls_api: _Api) -> None:
    pool = DirectPool(f"https://localhost:{tls_api.server_address[1]}", False, 2)
    prepared = requests.Request("GET", f"https://localhost/x/{ACCOUNT}").prepare()
    try:
        assert pool.send(prepared, f"/x/{ACCOUNT}", (2, 2)).json() == LISTING
    finally:
        pool.close()


@pytest.mark.parametrize("poll", [True, False], ids=["poll", "select"])
def test_a_keep_alive_connection_closed_while_idle_is_not_a_failure(
    plain_api: _Api, monkeypatch: pytest.MonkeyPatch, poll: bool
) -> None:
    """A server's keep-alive timeout: the idle connection is found closed before use,
    with poll(), and with select() where there is no poll() (Windows)."""
    if not poll:
        monkeypatch.delattr(direct.select, "poll")
    plain_api.hang_up_after_answer = True
    pool = DirectPool(f"http://127.0.0.1:{plain_api.server_address[1]}", True, 2)
    prepared = requests.Request("GET", "http://127.0.0.1/x").prepare()
    try:
        for _ in range(3):
            assert pool.send(prepared, "/x", (2, 2)).json() == LISTING
            time.sleep(0.1)  # idle: the server's close arrives
    finally:
        pool.close()
    assert len(plain_api.connections) == 3  # a new connection for each request


def test_connection_close_answers_are_not_reused(plain_api: _Api) -> None:
    plain_api.extra = [("Connection", "close")]
    with _client(f"http://127.0.0.1:{plain_api.server_address[1]}") as api:
        api.listing(ACCOUNT, M2M)
        api.listing(ACCOUNT, M2M)
    assert len(plain_api.connections) >= 4


@pytest.mark.parametrize("coding", ["gzip", "deflate", "raw-deflate"])
def test_a_coded_answer_is_decoded(plain_api: _Api, coding: str) -> None:
    plain_api.coding = coding
    with _client(f"http://127.0.0.1:{plain_api.server_address[1]}") as api:
        assert api.listing(ACCOUNT, M2M)["CarrierService"].url == "https://h.example.com/x"


def test_an_undecodable_answer_is_one_line(plain_api: _Api) -> None:
    plain_api.coding = "broken"
    with pytest.raises(TscError) as caught:
        _client(f"http://127.0.0.1:{plain_api.server_address[1]}").listing(ACCOUNT, M2M)
    assert "ContentDecodingError" in str(caught.value) and "\n" not in str(caught.value)


def test_repeated_headers_are_joined_as_urllib3_joins_them(plain_api: _Api) -> None:
    plain_api.extra = [("X-Seen", "one"), ("x-seen", "two")]
    pool = DirectPool(f"http://127.0.0.1:{plain_api.server_address[1]}", True, 1)
    prepared = requests.Request("GET", "http://127.0.0.1/x").prepare()
    try:
        response = pool.send(prepared, "/x", (2, 2))
    finally:
        pool.close()
    assert response.headers["X-SEEN"] == "one, two"
    assert response.encoding == "utf-8" or response.encoding is None
    assert response.reason == "OK" and response.url == "http://127.0.0.1/x"


def test_a_header_http_cannot_carry_is_refused_before_sending(plain_api: _Api) -> None:
    pool = DirectPool(f"http://127.0.0.1:{plain_api.server_address[1]}", True, 1)
    prepared = requests.Request("GET", "http://127.0.0.1/x", headers={"X": "é€"}).prepare()
    try:
        with pytest.raises(ValueError):
            pool.send(prepared, "/x", (2, 2))
    finally:
        pool.close()
    assert not plain_api.connections  # the connection was opened, nothing answered


def test_connections_handed_back_after_close_are_closed(plain_api: _Api) -> None:
    pool = DirectPool(f"http://127.0.0.1:{plain_api.server_address[1]}", True, 1)
    prepared = requests.Request("GET", "http://127.0.0.1/x").prepare()
    pool.send(prepared, "/x", (2, 2))
    pool.close()
    pool.send(prepared, "/x", (2, 2))  # a new connection, closed once answered
    assert pool._idle == []


def test_only_ordinary_endpoints_take_the_direct_path() -> None:
    assert direct.usable("https://thingspace.verizon.com", None)
    assert direct.usable("http://127.0.0.1:8787/base", None)
    assert not direct.usable("https://thingspace.verizon.com", ("c.pem", "k.pem"))
    assert not direct.usable("https://bücher.example", None)


@pytest.mark.parametrize(
    ("exc", "connecting", "kind"),
    [
        (TimeoutError(), True, requests.exceptions.ConnectTimeout),
        (TimeoutError(), False, requests.exceptions.ReadTimeout),
        (ssl.SSLError(), False, requests.exceptions.SSLError),
        (http.client.IncompleteRead(b""), False, requests.exceptions.ChunkedEncodingError),
        (ConnectionRefusedError(), True, requests.exceptions.ConnectionError),
        (http.client.RemoteDisconnected(), False, requests.exceptions.ConnectionError),
    ],
)
def test_failures_become_the_requests_exceptions_the_wire_handles(
    exc: BaseException, connecting: bool, kind: type[BaseException]
) -> None:
    prepared = requests.Request("GET", "http://127.0.0.1/x").prepare()
    mapped = direct._failure(exc, prepared, connecting=connecting)
    assert type(mapped) is kind and mapped.args[0] is exc


def test_a_bundle_that_is_not_pem_is_one_line(tls_api: _Api, tmp_path: Path) -> None:
    bundle = tmp_path / "not-a-bundle.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(UsageError, match=r"CA bundle .*not-a-bundle\.pem: no certificate in it"):
        direct.tls_context(str(bundle))


def test_a_bundle_that_cannot_be_read_names_why() -> None:
    denied = PermissionError(13, "Permission denied")
    assert direct.bundle_problem("/etc/ca.pem", denied) == (
        "cannot use the CA bundle /etc/ca.pem: Permission denied; check REQUESTS_CA_BUNDLE "
        "and CURL_CA_BUNDLE"
    )
    assert "no such file" in direct.bundle_problem("/etc/ca.pem", FileNotFoundError())
