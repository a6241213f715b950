"""Hostile values from the API or from error text reach the terminal escaped, never raw.

The remote side is a simulator seeded with registrations no configuration would accept:
a URL that clears the screen, a username carrying a fake ``Plan:`` line, a service name
with a newline and an OSC title sequence. Every line the CLI prints must stay one
printable line (our own colour codes aside), and the genuine summary must be the only one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests_mock as rm

from reconciler import cli
from reconciler.cli.commands import schema as schema_command
from reconciler.cli.console import Console
from reconciler.core.errors import ApiError, UsageError
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.simulator.faults import FaultSettings
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS, Credentials

GOOD, FAILING = "A-1", "A-2"
CLEAR_SCREEN = "https://hooks.example.com/\x1b[2J\x1b[31mall-good"
FORGED_SUMMARY = "bob\n\nPlan: 0 to create, 0 to update, 0 to delete."
EVIL_SERVICE = "Evil\x1b]0;owned\x07\nService"
CONFIG = f"""version: 1
accounts:
  "{GOOD}":
    callbacks:
      DeviceUsage:
        url: https://hooks.example.com/usage
  "{FAILING}":
    callbacks: {{}}
"""


def _printable(text: str) -> bool:
    return all(line.isprintable() for line in text.splitlines())


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[Simulator, Path]]:
    state = tmp_path / "state.json"
    remote = {
        "DeviceUsage": {"url": CLEAR_SCREEN, "username": FORGED_SUMMARY},
        EVIL_SERVICE: {"url": "https://hooks.example.com/evil\u202etxt.exe", "password": "pw"},
    }
    state.write_text(
        json.dumps({"version": 1, "accounts": {GOOD: remote, FAILING: remote}}), "utf-8"
    )
    config = tmp_path / "callbacks.yaml"
    config.write_text(CONFIG, "utf-8")
    settings = SimulatorConfig(
        credentials=Credentials.for_simulator({}),
        faults=FaultSettings(fail_writes={FAILING: 400}),
    )
    with Simulator(settings, state_path=state) as sim:
        yield sim, config


def _run(sim: Simulator, *argv: str) -> tuple[int, str, str]:
    env = {**SIMULATOR_DEFAULTS, "THINGSPACE_ENDPOINT": sim.base_url, "NO_COLOR": "1"}
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env=env, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_plan_text_shows_remote_values_escaped(hostile: tuple[Simulator, Path]) -> None:
    sim, config = hostile
    code, out, err = _run(sim, "plan", "-c", str(config))
    assert code == 0, err
    assert _printable(out) and _printable(err)
    assert [line for line in out.splitlines() if line.startswith("Plan:")] == [
        "Plan: 0 to create, 1 to update, 3 to delete."
    ]
    assert "\\x1b[2J\\x1b[31mall-good" in out
    assert "bob\\n\\nPlan: 0 to create" in out
    assert "Evil\\x1b]0;owned\\x07\\nService" in out
    assert "evil\\u202etxt.exe" in out


def test_plan_markdown_keeps_the_table(hostile: tuple[Simulator, Path]) -> None:
    from tests.test_escape import _cells

    sim, config = hostile
    code, out, err = _run(sim, "plan", "-c", str(config), "--output", "markdown")
    assert code == 0, err
    assert _printable(out)
    rows = [line for line in out.splitlines() if line.startswith("|")]
    head = rows.index("| action | service | field | before | after |")
    summary, changes = rows[:head], rows[head:]  # counts per account, then the changes
    assert all(len(_cells(row)) == 4 for row in summary)
    assert changes and all(len(_cells(row)) == 5 for row in changes)
    assert [line for line in out.splitlines() if "Plan:" in line.split("|")[0]] == [
        "**Plan: 0 to create, 1 to update, 3 to delete.**"
    ]


def test_apply_progress_and_failures_are_escaped(hostile: tuple[Simulator, Path]) -> None:
    sim, config = hostile
    code, out, err = _run(sim, "apply", "-c", str(config), "--auto-approve")
    assert code == 1
    assert _printable(out) and _printable(err)
    progress = out.splitlines()
    assert f"{GOOD}/DeviceUsage: updated" in progress
    evil = "/Evil\\x1b]0;owned\\x07\\nService: delete failed: DELETE "
    assert any(line.startswith(f"{FAILING}{evil}") for line in progress), out
    errors = err.splitlines()
    assert any(line.startswith(f"Error: {FAILING}{evil}") for line in errors), err
    assert errors[-1] == "Error: apply failed: 3 of 4 changes failed"


def test_export_notes_are_escaped(hostile: tuple[Simulator, Path]) -> None:
    sim, _ = hostile
    code, _out, err = _run(sim, "export", "--account", GOOD)
    assert code == 0, err
    assert _printable(err)
    assert f"Note: {GOOD}/Evil\\x1b]0;owned\\x07\\nService has a password: set " in err


def _raising(error: Exception, secret: str | None = None) -> object:
    def run(args: object, io: Console) -> None:
        if secret is not None:
            io.secrets.add([secret])
        raise error

    return run


@pytest.mark.parametrize(
    "error",
    [
        UsageError("bad value 'x\x1b[2J\nFAKE: line'"),
        ApiError("GET", "/api/x", 400, "E\x1b[31m", "unknown account 'a\u202e\nb'"),
    ],
)
def test_error_lines_are_escaped(error: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema_command, "run", _raising(error))
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["schema"], env={}, stdin=io.StringIO(), stdout=out, stderr=err)
    assert code == 1
    assert err.getvalue().count("\n") == 1 and _printable(err.getvalue())
    assert err.getvalue().startswith("Error: ")


def test_secrets_are_redacted_before_escaping(
    requests_mock: rm.Mocker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret holding a backslash or a control character, echoed by an API: the text is
    scrubbed where it enters the error (the transport), before the funnel escapes it, so
    neither the secret nor its escaped spelling reaches the output."""
    from tests.test_secrets import _error_for  # the client against a mocked API

    secret = "pa\\ss\x1bword"
    error = _error_for(requests_mock, f"the API said: {secret}", [secret])
    monkeypatch.setattr(schema_command, "run", _raising(error))
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["schema"], env={}, stdin=io.StringIO(), stdout=out, stderr=err) == 1
    assert "the API said: (sensitive)" in err.getvalue()
    assert "pa" not in err.getvalue().replace("(sensitive)", "") and _printable(err.getvalue())
