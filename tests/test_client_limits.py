"""Connection errors name the host and the cause."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
import requests

from reconciler.core.errors import ApiError
from reconciler.core.families import M2M
from reconciler.thingspace.auth import TOKEN_PATH
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials
from reconciler.thingspace.options import ClientOptions
from tests.helpers import BlackHole

BASE = "https://ts.example.test"
ACCOUNT = "0252012345-00001"
CREDS = Credentials(
    client_id="client-id-1",
    client_secret="client-secret-XYZ",
    username="api-user",
    password="user-password-PQR",
)


# -- connection errors name the host and the cause ------------------------------------------


def _one_attempt(base: str, **options: Any) -> str:
    client = ThingSpaceClient(
        base, CREDS, options=ClientOptions(max_attempts=1, **options), sleep=lambda s: None
    )
    with pytest.raises(ApiError) as info:
        client.list_callbacks(ACCOUNT, M2M)
    assert info.value.status is None  # no HTTP answer
    return str(info.value)


def test_connection_refused_names_host_and_port() -> None:
    text = _one_attempt("http://127.0.0.1:1")
    assert "connection refused by 127.0.0.1:1" in text
    assert text.startswith("POST /api/ts/v1/oauth2/token: ")


def test_no_answer_names_host_port_and_timeout() -> None:
    with BlackHole() as hole:
        text = _one_attempt(hole.base, read_timeout=0.2)
    assert f"no answer from 127.0.0.1:{hole.port} within 0.2 s" in text


def test_unresolvable_host_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)  # nothing leaves this machine
    text = _one_attempt("https://thingspace.verizon.co")
    assert "could not resolve thingspace.verizon.co" in text


def test_connect_timeout_is_named(requests_mock: Any) -> None:
    requests_mock.post(
        BASE + TOKEN_PATH, exc=requests.exceptions.ConnectTimeout("10.0.0.1 secret-ish")
    )
    text = _one_attempt(BASE)
    assert "timed out connecting to ts.example.test:443 (after 10 s)" in text
    assert "secret-ish" not in text  # never the exception's own text


def test_closed_without_an_answer_is_named() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def close_each() -> None:
        for _ in range(1):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.close()

    closer = threading.Thread(target=close_each, daemon=True)
    closer.start()
    try:
        text = _one_attempt(f"http://127.0.0.1:{port}")
    finally:
        closer.join(timeout=5)
        listener.close()
    assert (
        f"127.0.0.1:{port} closed the connection without an answer" in text
        or f"connection reset by 127.0.0.1:{port}" in text
    )
