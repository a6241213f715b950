"""Requests and responses as plain values, the error body, and path routing (no sockets).

Error bodies are ThingSpace's ``{"errorCode", "errorMessage"}``; a message is built by
the simulator from names and paths and never echoes a password or token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.simulator.errors import SimulatorError


@dataclass(frozen=True)
class Request:
    method: str
    segments: tuple[str, ...]  # percent-decoded path segments
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)  # first value of each parameter
    # time.monotonic() when its request line was read (None: now, for a request made in
    # process): the injected latency counts from here.
    arrived: float | None = None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


_CODES = {
    400: "INVALID_PARAMETER",
    401: "INVALID_ACCESS",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    429: "TOO_MANY_REQUESTS",
    501: "NOT_IMPLEMENTED",
}


def json_response(status: int, data: Any, *headers: tuple[str, str]) -> Response:
    return Response(status, json.dumps(data).encode("utf-8"), headers)


def error_response(
    status: int, message: str, code: str | None = None, *hdr: tuple[str, str]
) -> Response:
    default = "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR"
    body = {"errorCode": code or _CODES.get(status, default), "errorMessage": message}
    return json_response(status, body, *hdr)


Handler = Callable[[Request, dict[str, str]], Response]
Routes = list[tuple[tuple[str, ...], dict[str, Handler]]]


def route(routes: Routes, req: Request) -> tuple[Response, dict[str, str]]:
    """Run the handler whose pattern (``{name}`` = any non-empty segment) and method match.

    Unknown path -> 404, known path with another method -> 405; a :class:`SimulatorError`
    from a handler is the caller's mistake (400), anything else a simulator fault (500).
    """
    for pattern, methods in routes:
        params = match(pattern, req.segments)
        if params is None:
            continue
        handler = methods.get(req.method)
        if handler is None:
            allow = ("Allow", ", ".join(sorted(methods)))
            return error_response(405, f"method {req.method} not allowed", None, allow), params
        try:
            return handler(req, params), params
        except SimulatorError as exc:
            return error_response(400, str(exc)), params
        except Exception:  # a simulator bug or a refused state write: still answer
            return error_response(500, "internal simulator error"), params
    return error_response(404, "no such resource"), {}


def match(pattern: tuple[str, ...], segments: tuple[str, ...]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for want, got in zip(pattern, segments, strict=True):
        if want.startswith("{"):
            if not got:
                return None
            params[want.strip("{}")] = got
        elif want != got:
            return None
    return params
