"""The brakes' and targeting flags on the command line: bad values are one line, exit 1,
and nothing is read (no endpoint is reachable here: any request would fail the test)."""

from __future__ import annotations

import io

import pytest

from reconciler import cli
from tests.e2e_support import EXAMPLE

NOWHERE = {"THINGSPACE_ENDPOINT": "http://127.0.0.1:9", "SMS_HOOK_PASSWORD": "x-secret-value"}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env=NOWHERE, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--max-deletes", "-1"], "expected 0 or more, got -1"),
        (["--max-deletes", "many"], "expected a whole number, got 'many'"),
        (
            ["--force", "--max-deletes", "3"],
            "--force releases --max-deletes; give one or the other",
        ),
        (
            ["--account", "nothing-*"],
            "--account 'nothing-*' matches no account in the configuration",
        ),
    ],
)
def test_bad_flags_are_one_line_and_read_nothing(
    command: str, flags: list[str], message: str
) -> None:
    extra = ["--auto-approve"] if command == "apply" else []
    code, out, err = run(command, "-c", str(EXAMPLE), *extra, *flags)
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1 and message in err, err


def test_apply_account_flag_takes_one_value_so_a_planfile_stays_a_planfile() -> None:
    code, _out, err = run("apply", "--auto-approve", "--account", "a-*", "missing-plan.json")
    assert code == 1
    assert "missing-plan.json: cannot read plan file" in err


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_help_lists_the_flags(command: str) -> None:
    code, out, _err = run(command, "--help")
    assert code == 0
    for flag in ("--account PATTERN", "--allow-protected", "--force", "--max-deletes N"):
        assert flag in out
