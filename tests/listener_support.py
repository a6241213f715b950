"""Real listeners on 127.0.0.1 for the listener check: TLS with certificates from a test
CA (trustme), a chosen answer, an optional delay, a record of every request received.

Tests reach them through :class:`FakeNetwork`, put in place of
``reconciler.listeners.network.current`` for an in-process run of the real command: it
resolves test host names to public-looking addresses (the public-address rule is
applied to them as to any answer) and connects each such address to its listener's
port on 127.0.0.1. An address it does not know is refused, so nothing leaves this machine.
"""

from __future__ import annotations

import io
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

from reconciler import cli
from reconciler.listeners.network import Network


@dataclass
class Received:
    """What one listener was sent: the raw request head of every request."""

    heads: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, head: str) -> None:
        with self.lock:
            self.heads.append(head)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        head = self.requestline + "\r\n" + str(self.headers)
        self.server.received.add(head)
        if self.server.delay:
            time.sleep(self.server.delay)
        self.send_response(self.server.status)
        for name, value in self.server.extra_headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self,
        context: ssl.SSLContext | None,
        status: int,
        delay: float,
        extra_headers: Sequence[tuple[str, str]],
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.status = status
        self.delay = delay
        self.extra_headers = extra_headers
        self.received = Received()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request's own thread, not in the accept loop.
        if self.context is not None:
            request.settimeout(10)
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class Listener:
    """A listener answering ``status`` (after ``delay`` seconds) to every request."""

    def __init__(
        self,
        cert: trustme.LeafCert | None,
        *,
        status: int = 204,
        delay: float = 0.0,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        context = None
        if cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
        self.server = _Server(context, status, delay, extra_headers)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def received(self) -> list[str]:
        return list(self.server.received.heads)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """Accepts TCP connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


class FakeNetwork:
    """Names -> addresses, and addresses -> local ports; everything else is refused."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.ports: dict[str, int] = {}
        self.connected: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def add(self, host: str, addresses: list[str], port: int | None = None) -> None:
        self.names[host] = addresses
        if port is not None:
            for address in addresses:
                self.ports[address] = port

    def resolve(self, host: str, port: int, timeout: float) -> list[str]:
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.names[host]

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        if address not in self.ports:
            raise ConnectionRefusedError(111, "Connection refused")
        with self._lock:
            self.connected.append((address, port))
        return socket.create_connection(("127.0.0.1", self.ports[address]), timeout=timeout)

    def network(self) -> Network:
        return Network(resolve=self.resolve, connect=self.connect)


def make_ca(folder: Path) -> tuple[trustme.CA, Path]:
    """A fresh test CA and its certificate written to a PEM file (for --ca-bundle)."""
    ca = trustme.CA()
    path = folder / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def days_from_now(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def run_cli(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The real command, in-process (the network override is in place only in-process)."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env=env or {}, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()
