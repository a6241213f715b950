"""Why a request got no answer, in words that name the host: "could not resolve HOST",
"connection refused by HOST:PORT", "no answer from HOST:PORT within 8 s".

Built from exception types only, never from an exception's text (which may quote a URL
with its query, or a header).
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
import urllib3


def seconds(value: float) -> str:
    """``8`` -> ``"8 s"``, ``0.25`` -> ``"0.25 s"``."""
    return f"{value:g} s"


def host_port(base: str) -> str:
    """``HOST:PORT`` of the endpoint (normalized: no user info, path or query)."""
    parts = urlsplit(base)
    host = parts.hostname or "?"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: causes, contexts, urllib3's ``reason``, exception args."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [getattr(current, "reason", None), current.__cause__, current.__context__]
        linked += list(current.args)
        todo.extend(x for x in linked if isinstance(x, BaseException))


def describe(exc: BaseException, where: str, timeout: tuple[float, float]) -> str:
    """Why a request got no answer, naming the host (never the exception's own text,
    which may quote a URL or a header)."""
    chain = list(_chain(exc))

    def found(*kinds: type[BaseException]) -> bool:
        return any(isinstance(e, kinds) for e in chain)

    if found(socket.gaierror, urllib3.exceptions.NameResolutionError):
        return f"could not resolve {where.rsplit(':', 1)[0].strip('[]')}"
    if found(ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"timed out connecting to {where} (after {seconds(timeout[0])})"
    if isinstance(exc, requests.Timeout) or found(TimeoutError):
        return f"no answer from {where} within {seconds(timeout[1])}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"the answer from {where} broke off"
    if found(ConnectionResetError):
        return f"connection reset by {where}"
    if found(http.client.RemoteDisconnected, urllib3.exceptions.ProtocolError):
        return f"{where} closed the connection without an answer"
    return f"connection to {where} failed"
