"""The check's one door to the network: resolving a host and connecting to an address.

:data:`current` is what every check uses. Nothing on the command line or in the
environment can change it; tests replace it in-process (``monkeypatch``) with a
:class:`Network` that resolves test names to public-looking addresses and connects
those to listeners on 127.0.0.1. The public-address rule is applied to whatever the
resolver answers, so it stays in force in tests too.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Resolve = Callable[[str, int, float], Sequence[str]]  # host, port, timeout -> addresses
Connect = Callable[[str, int, float], socket.socket]  # address, port, timeout -> socket


class ResolveTimeout(OSError):
    """The resolver gave no answer in time."""


@dataclass(frozen=True)
class Network:
    resolve: Resolve
    connect: Connect


def system_resolve(host: str, port: int, timeout: float) -> list[str]:
    """Every A and AAAA address of ``host`` (the system resolver, in its order, once each).

    ``getaddrinfo`` has no timeout of its own: it runs in a daemon thread that is
    abandoned (and cannot hold up the exit) when it has not answered in time.
    """
    found: list[list[str]] = []
    failed: list[OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.append(list(dict.fromkeys(str(info[4][0]) for info in infos)))
        except OSError as exc:
            failed.append(exc)

    worker = threading.Thread(target=lookup, name="tscallbacks-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if failed:
        raise failed[0]
    if not found:
        raise ResolveTimeout(f"no answer within {timeout:g} s")
    return found[0]


def system_connect(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


SYSTEM = Network(resolve=system_resolve, connect=system_connect)
current: Network = SYSTEM
