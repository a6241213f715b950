"""The code stays type-checked (mypy --strict) and lint-clean (ruff): part of the test run."""

from __future__ import annotations

import subprocess
import sys

from tests.e2e_support import REPO


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_mypy_strict() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    result = _run("ruff", "check", "reconciler", "tests")
    assert result.returncode == 0, result.stdout + result.stderr
