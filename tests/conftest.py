"""Shared fixtures. No test may talk to anything but this machine's loopback.

The guard is pytest-socket, configured in pyproject.toml (``--allow-hosts=127.0.0.1,::1,
localhost``): a connection anywhere else raises ``SocketConnectBlockedError`` before a
packet leaves (tests/test_network_guard.py proves it). The ``tscallbacks`` subprocesses
of the end-to-end tests are not guarded by it; they talk to a simulator on 127.0.0.1.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes about half a minute (the default timeouts, for real)"
    )
