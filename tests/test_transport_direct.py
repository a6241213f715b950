"""The wire's direct path (a plain session: straight to urllib3's pool) against real
sockets on 127.0.0.1: the same answers and the same one-line failures as through
``requests.Session``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from reconciler.core.errors import TscError
from reconciler.core.families import M2M
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.options import ClientOptions
from reconciler.thingspace.transport import Wire

CREDS = Credentials.for_simulator({})
ACCOUNT = "0252012345-00001"


def client(endpoint: str, **options: float) -> ThingSpaceClient:
    return ThingSpaceClient(
        endpoint,
        CREDS,
        options=ClientOptions(max_attempts=1, **options),  # type: ignore[arg-type]
        sleep=lambda seconds: None,
    )


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A socket that accepts connections and does what the test says with them."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server, f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


def test_the_direct_path_is_taken_and_answers_like_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[str] = []
    real = Wire._direct

    def spy(self: Wire, prepared: requests.PreparedRequest) -> object:
        found = real(self, prepared)
        sent.append("direct" if found is not None else "session")
        return found

    monkeypatch.setattr(Wire, "_direct", spy)
    with Simulator(SimulatorConfig(credentials=CREDS)) as sim, client(sim.base_url) as api:
        assert api.listing(ACCOUNT, M2M) == {}
    assert sent and set(sent) == {"direct"}
    assert [r.status for r in sim.requests()] == [200, 200, 200, 200]  # logout included


def test_a_refused_connection(listener: tuple[socket.socket, str]) -> None:
    server, endpoint = listener
    server.close()  # nothing listens there any more
    with pytest.raises(TscError, match=r"connection refused by 127\.0\.0\.1"):
        client(endpoint).listing(ACCOUNT, M2M)


def test_a_connection_closed_without_an_answer(listener: tuple[socket.socket, str]) -> None:
    server, endpoint = listener

    def hang_up() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    gone = r"connection reset by 127\.0\.0\.1|127\.0\.0\.1:\d+ closed the connection"
    with pytest.raises(TscError, match=gone):
        client(endpoint).listing(ACCOUNT, M2M)


def test_no_answer_within_the_timeout(listener: tuple[socket.socket, str]) -> None:
    server, endpoint = listener
    held: list[socket.socket] = []

    def accept_and_wait() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_and_wait, daemon=True).start()
    with pytest.raises(TscError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.2 s"):
        client(endpoint, read_timeout=0.2).listing(ACCOUNT, M2M)
    for conn in held:
        conn.close()


def test_tls_to_a_plain_http_server_is_a_tls_error() -> None:
    with Simulator(SimulatorConfig(credentials=CREDS)) as sim:
        endpoint = sim.base_url.replace("http://", "https://")
        with pytest.raises(TscError, match=r"TLS error with 127\.0\.0\.1"):
            client(endpoint).listing(ACCOUNT, M2M)
