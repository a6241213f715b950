"""The simulator as a server: real HTTP on a local socket (standard library only).

``/api/...`` is the simulated ThingSpace API (:mod:`reconciler.simulator.api`):
authenticated, logged and subject to faults. ``/_simulator/...`` is an unauthenticated
admin surface for tests and pipelines (state, reset, request log and counts, faults,
session expiry).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from reconciler.simulator.api import Api
from reconciler.simulator.credentials import ClientCredentials
from reconciler.simulator.errors import SimulatorError
from reconciler.simulator.faults import FaultController, FaultSettings
from reconciler.simulator.state import (
    AuthState,
    RegistrationStore,
    RequestCounts,
    RequestLog,
    RequestRecord,
)
from reconciler.simulator.wire import (
    Request,
    Response,
    Routes,
    error_response,
    json_response,
    route,
)

MAX_BODY_BYTES = 1 << 20
_POLL_SECONDS = 0.05  # how soon serve_forever notices stop(); the default 0.5 s slows tests


@dataclass(frozen=True)
class SimulatorConfig:
    """What the simulator accepts and how it behaves.

    ``credentials``: the one client and user it accepts, a ``SimulatorCredentials`` or
    anything with the same four string attributes. ``accounts``: None accepts any account
    name; a set accepts those plus ``TestAccount-2`` (the ThingSpace sandbox account,
    always accepted). ``faults`` are the start-up fault settings.
    """

    credentials: ClientCredentials
    accounts: frozenset[str] | None = None
    session_idle_seconds: float = 1200.0
    token_ttl_seconds: float = 3600.0
    faults: FaultSettings = field(default_factory=FaultSettings)


class _Admin:
    """``/_simulator/...``: unauthenticated, unlogged, fault-free controls for tests."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.routes: Routes = [
            (("_simulator", "state"), {"GET": self._state}),
            (("_simulator", "reset"), {"POST": self._reset}),
            (("_simulator", "requests"), dict.fromkeys(("GET", "DELETE"), self._requests)),
            (("_simulator", "requests", "counts"), {"GET": self._counts}),
            (("_simulator", "faults"), dict.fromkeys(("GET", "POST", "DELETE"), self._faults)),
            (("_simulator", "sessions", "expire"), {"POST": self._expire}),
        ]

    def handle(self, req: Request) -> Response:
        return route(self.routes, req)[0]

    def _state(self, req: Request, _: dict[str, str]) -> Response:
        return json_response(200, self.api.store.snapshot())

    def _reset(self, req: Request, _: dict[str, str]) -> Response:
        self.api.store.clear()
        self.api.auth.reset()
        self.api.faults.clear()
        self.api.log.clear()
        return json_response(200, {"reset": True})

    def _requests(self, req: Request, _: dict[str, str]) -> Response:
        if req.method == "DELETE":
            self.api.log.clear()
        return json_response(200, [r.to_dict() for r in self.api.log.records()])

    def _counts(self, req: Request, _: dict[str, str]) -> Response:
        return json_response(200, self.api.log.counts().to_dict())

    def _faults(self, req: Request, _: dict[str, str]) -> Response:
        if req.method == "DELETE":
            self.api.faults.clear()
        elif req.method == "POST":
            try:
                data = json.loads(req.body or b"{}")
            except ValueError:
                return error_response(400, "fault settings must be a JSON object")
            self.api.faults.merge(data)  # a SimulatorError becomes a 400 in route()
        return json_response(200, self.api.faults.settings().to_dict())

    def _expire(self, req: Request, _: dict[str, str]) -> Response:
        self.api.auth.expire_sessions()
        return json_response(200, {"expired": True})


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    server_version = "ThingSpaceSimulator/1"
    timeout = 120  # an idle keep-alive connection must not hold a thread forever
    # Headers and body go out in separate writes; with Nagle's algorithm on, the
    # client's delayed ACK stalls every keep-alive response by tens of milliseconds.
    disable_nagle_algorithm = True
    # Buffered: a response's header lines and body leave in one system call, when
    # handle_one_request() flushes after the handler (unbuffered, each is a write).
    wbufsize = -1

    arrived: float | None = None

    def parse_request(self) -> bool:
        self.arrived = time.monotonic()  # its request line is in: the latency counts from here
        return super().parse_request()

    def _dispatch(self) -> None:
        server = cast(_Server, self.server)
        try:
            target = urlsplit(self.path)
        except ValueError:  # e.g. "GET http://[ HTTP/1.1"
            self._send(error_response(400, "malformed request target"), close=True)
            return
        raw_path = target.path.strip("/")
        # Some families carry the account or service in the query; the first value counts.
        query = {name: values[0] for name, values in parse_qs(target.query).items()}
        # Split before decoding: an account name may hold an encoded "/".
        segments = tuple(unquote(s) for s in raw_path.split("/")) if raw_path else ()
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = headers.get("content-length", "0").strip() or "0"
        # isdigit() accepts "²" and other digits int() refuses: ASCII only.
        if (
            "chunked" in headers.get("transfer-encoding", "").lower()
            or not length.isascii()
            or not length.isdigit()
        ):
            self._send(error_response(411, "a valid Content-Length is required"), close=True)
            return
        if int(length) > MAX_BODY_BYTES:
            # Drain a moderately large body so the client reads our 413 instead of a reset.
            remaining = int(length) if int(length) <= 16 * MAX_BODY_BYTES else 0
            while remaining > 0 and (chunk := self.rfile.read(min(remaining, 65536))):
                remaining -= len(chunk)
            self._send(error_response(413, "request body too large"), close=True)
            return
        body = self.rfile.read(int(length))
        request = Request(self.command, segments, headers, body, query, self.arrived)
        if segments[:1] == ("api",):
            response = server.api.handle(request)
        else:
            response = server.admin.handle(request)
        if response is None:  # injected fault: hang up without a word
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: Response, *, close: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, unknown verb) get a JSON error body too."""
        reason = message or self.responses.get(code, ("error",))[0]
        self._send(error_response(code, reason), close=True)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the core never prints (the request log is the record)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: a client hanging up mid-answer is normal, and the simulator never
        prints a traceback (the request log is the record)."""

    # The default listen backlog of 5 drops connection bursts (parallel clients),
    # and a dropped SYN costs a one-second retransmit.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        self.api = api
        self.admin = _Admin(api)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _HttpHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on keep-alive clients so no old handler touches state after stop."""
        with self._open_lock:
            for conn in list(self._open):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class Simulator:
    """The simulator: binds at construction, serves after :meth:`start` or :meth:`serve_forever`.

    ``state_path`` None keeps registrations in memory; otherwise they are loaded from it (a
    corrupt file raises :class:`SimulatorError`) and written atomically after every change.
    ``clock`` (monotonic seconds) is for tests of token/session expiry.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        state_path: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.state_path = state_path
        self._store = RegistrationStore(state_path)
        self._auth = AuthState(
            config.credentials,
            token_ttl=config.token_ttl_seconds,
            session_idle=config.session_idle_seconds,
            clock=clock or time.monotonic,
        )
        self._faults = FaultController(config.faults)
        self._log = RequestLog()
        api = Api(
            store=self._store,
            auth=self._auth,
            faults=self._faults,
            log=self._log,
            accounts=config.accounts,
            token_ttl_seconds=config.token_ttl_seconds,
        )
        try:
            self._server = _Server((host, port), api)
        except OSError as exc:
            raise SimulatorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._serving = False
        self._closed = False

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> str:
        """Serve in a daemon thread; returns the base URL."""
        with self._lock:
            if self._thread is None:
                self._serving = True
                self._thread = threading.Thread(
                    target=self._server.serve_forever,
                    args=(_POLL_SECONDS,),
                    name="thingspace-simulator",
                    daemon=True,
                )
                self._thread.start()
        return self.base_url

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another one."""
        with self._lock:
            self._serving = True
        self._server.serve_forever(_POLL_SECONDS)

    def stop(self) -> None:
        """Stop serving, hang up on open connections and close the socket (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            serving, thread = self._serving, self._thread
        if serving:
            self._server.shutdown()
        if thread is not None:
            thread.join()
        self._server.close_connections()
        self._server.server_close()
        self._store.close()

    def requests(self) -> list[RequestRecord]:
        return self._log.records()

    def request_counts(self) -> RequestCounts:
        """Every ``/api`` call since the last clear (the log keeps only the newest)."""
        return self._log.counts()

    def clear_requests(self) -> None:
        self._log.clear()

    def snapshot(self) -> dict[str, Any]:
        return self._store.snapshot()

    def set_faults(self, settings: FaultSettings) -> None:
        self._faults.set(settings)

    def fault_settings(self) -> FaultSettings:
        """Current fault settings, ``*_next`` being the counts still remaining."""
        return self._faults.settings()

    def expire_sessions(self) -> None:
        self._auth.expire_sessions()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
