"""Every file under tests/cases/invalid/ fails with exactly the lines in its .expected file."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli import main
from reconciler.config import load_config
from reconciler.core.errors import ConfigError
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS, Credentials

REPO = Path(__file__).resolve().parent.parent
CASES = sorted((REPO / "tests" / "cases" / "invalid").glob("*.yaml"))

# The environment every invalid case runs with; its value must never be printed.
ENV = {"HOOK_PASSWORD": "case-secret-value"}
# Secret values written into the case files (literal passwords, URL userinfo).
SECRETS = ("case-secret-value", "hunter2-literal", "SuperSecret1")


def test_there_are_cases() -> None:
    assert len(CASES) >= 38


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_invalid_case(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    relative = case.relative_to(REPO).as_posix()
    expected = case.with_suffix(".expected").read_text("utf-8").splitlines()

    with pytest.raises(ConfigError) as caught:
        load_config(relative, env=ENV, require_env=True)

    lines = caught.value.lines()
    assert lines == expected
    assert any(not p.warning for p in caught.value.problems)
    for line in [*lines, str(caught.value)]:
        for secret in SECRETS:
            assert secret not in line


def test_every_expected_file_has_its_case() -> None:
    expected = sorted((REPO / "tests" / "cases" / "invalid").glob("*.expected"))
    assert [p.stem for p in expected] == [p.stem for p in CASES]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(credentials=Credentials.for_simulator({}))) as simulator:
        yield simulator


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_cli_rejects_case_without_network(
    case: Path, command: str, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real CLI: exit 1, the same located lines, no traceback, no request."""
    monkeypatch.chdir(REPO)
    relative = case.relative_to(REPO).as_posix()
    expected = case.with_suffix(".expected").read_text("utf-8").splitlines()
    only_warnings = False
    if command == "validate":  # an unset variable is only a warning there
        expected = [line for line in expected if "is not set" not in line]
        only_warnings = all(": warning: " in line for line in expected)
    env = {**ENV, **SIMULATOR_DEFAULTS, "THINGSPACE_ENDPOINT": sim.base_url}
    argv = [command, "-c", relative, *(["--auto-approve"] if command == "apply" else [])]
    sim.clear_requests()
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, env=env, stdin=io.StringIO(), stdout=out, stderr=err)
    assert code == (0 if only_warnings else 1)
    assert "Traceback" not in err.getvalue()
    if only_warnings:
        assert ": warning: environment variable" in err.getvalue()
    printed = [line for line in err.getvalue().splitlines() if "is not set" not in line]
    assert printed == [line for line in expected if "is not set" not in line]
    assert sim.requests() == []
    for secret in SECRETS:
        assert secret not in out.getvalue() + err.getvalue()
