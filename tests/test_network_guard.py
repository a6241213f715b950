"""The network guard (pytest-socket, set up in pyproject.toml): loopback only.

192.0.2.1 is TEST-NET-1 (RFC 5737), an address that routes nowhere; the guard refuses the
connect() itself, so no packet is sent to it (nor any DNS query: it is an IP literal).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from pytest_socket import SocketConnectBlockedError

from reconciler.core.errors import TscError
from reconciler.core.families import M2M
from reconciler.thingspace.client import ThingSpaceClient
from reconciler.thingspace.credentials import Credentials

OUTSIDE = "192.0.2.1"
BLOCKED = "A test tried to use socket.socket.connect"


@pytest.fixture
def listener() -> Iterator[tuple[str, int]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[:2]


def test_the_guard_is_configured_for_loopback_only(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.hasplugin("socket")
    allowed = pytestconfig.getoption("--allow-hosts")
    assert sorted(allowed.split(",")) == ["127.0.0.1", "::1", "localhost"]


def test_a_raw_connection_off_this_machine_is_refused() -> None:
    with (
        pytest.warns(UserWarning, match=BLOCKED),
        pytest.raises(SocketConnectBlockedError, match=OUTSIDE),
    ):
        socket.create_connection((OUTSIDE, 443), timeout=1)


def test_the_api_client_cannot_reach_off_this_machine() -> None:
    """The guard sits under requests: the client's call fails, not as a handled API error
    (which a test could mistake for a refused request) but as the guard's own error."""
    credentials = Credentials.for_simulator({})
    with (
        ThingSpaceClient(f"https://{OUTSIDE}", credentials) as client,
        pytest.warns(UserWarning, match=BLOCKED),
        pytest.raises(SocketConnectBlockedError) as info,
    ):
        client.listing("0252012345-00001", M2M)
    assert not isinstance(info.value, TscError)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_connections_are_allowed(listener: tuple[str, int], host: str) -> None:
    with socket.create_connection((host, listener[1]), timeout=5) as conn:
        assert conn.getpeername()[:2] == listener
