"""Shared fixtures. No test may talk to anything but this machine's loopback.

The guard is pytest-socket, configured in pyproject.toml (``--allow-hosts=127.0.0.1,::1,
localhost``): a connection anywhere else raises ``SocketConnectBlockedError`` before a
packet leaves (tests/test_network_guard.py proves it). The ``tscallbacks`` subprocesses
of the end-to-end tests are not guarded by it; they talk to a simulator on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _in_a_fresh_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own empty directory: what a run writes to the current one
    (the journal, the embedded simulator's state under .tscallbacks/) stays there."""
    monkeypatch.chdir(tmp_path)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes about half a minute (the default timeouts, for real)"
    )
