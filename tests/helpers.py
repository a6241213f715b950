"""Small builders shared by unit tests."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import MappingProxyType
from typing import Any, TypeVar

import requests
import requests_mock

from reconciler.core import catalog
from reconciler.core.families import M2M
from reconciler.core.model import CurrentState, DesiredAccount, DesiredState, Registration
from reconciler.core.secrets import Secret
from reconciler.thingspace.auth import LOGIN_PATH, TOKEN_PATH

# The M2M services in catalog order (tests that need several distinct services).
M2M_SERVICES = tuple(catalog.services_of(M2M))


def reg(
    url: str, username: str | None = None, password: str | None = None, *, known: bool = True
) -> Registration:
    return Registration(
        url=url,
        username=username,
        password=Secret(password) if password is not None else None,
        password_known=known,
    )


def desired(accounts: dict[str, dict[str, Registration]], *, prune: bool = True) -> DesiredState:
    return DesiredState(
        MappingProxyType(
            {
                name: DesiredAccount(name, prune, MappingProxyType(dict(callbacks)))
                for name, callbacks in accounts.items()
            }
        )
    )


def current(accounts: dict[str, dict[str, Registration]]) -> CurrentState:
    """Observed state. Every observed registration names the family that listed it (the
    normalizer guarantees that): the catalog's, or M2M for a name the catalog lacks."""

    def listed(service: str, registration: Registration) -> Registration:
        if registration.family is not None:
            return registration
        return replace(registration, family=catalog.family_of(service) or M2M)

    return CurrentState(
        MappingProxyType(
            {
                name: MappingProxyType({s: listed(s, r) for s, r in c.items()})
                for name, c in accounts.items()
            }
        )
    )


class InFlightProbe:
    """A requests-mock response callback that records the peak of concurrent requests."""

    def __init__(self, delay: float = 0.02) -> None:
        self._lock = threading.Lock()
        self._delay = delay
        self._in_flight = 0
        self.peak = 0

    def __call__(self, request: Any, context: Any) -> list[Any]:
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        time.sleep(self._delay)
        with self._lock:
            self._in_flight -= 1
        return []


def bare_adapter_session(base: str, *, bearer: str, session_token: str) -> tuple[Any, Any]:
    """A session on a bare requests-mock Adapter answering auth (the Mocker would
    serialize every send behind one lock and hide concurrency)."""
    adapter = requests_mock.Adapter()
    session = requests.Session()
    session.mount("https://", adapter)
    adapter.register_uri("POST", base + TOKEN_PATH, json={"access_token": bearer})
    adapter.register_uri("POST", base + LOGIN_PATH, json={"sessionToken": session_token})
    return adapter, session


class BlackHole:
    """A TCP endpoint on 127.0.0.1 that accepts connections and never answers.

    ``connections`` counts the connections made (one per request attempt: a timed-out
    connection is never reused). Use as a context manager; ``base`` is its http URL.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.05)
        self._closed = threading.Event()
        self.port: int = self._listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._held)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self._held.append(conn)

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for conn in self._held:
                conn.close()


_Server = TypeVar("_Server", bound=socketserver.BaseServer)


@contextmanager
def serving(server: _Server) -> Iterator[_Server]:
    """``server`` answering from a thread until the block ends, then shut and closed."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
