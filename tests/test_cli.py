"""The CLI in-process, with injected streams and environment (no network unless stated)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from reconciler import __version__, cli
from reconciler.cli.commands import schema as schema_command
from reconciler.cli.console import use_color
from tests.e2e_support import EXAMPLE


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(
    *argv: str, env: dict[str, str] | None = None, stdin: io.StringIO | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env=env or {}, stdin=stdin or io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# The example's one secret and made-up ThingSpace credentials.
CREDENTIALS = {
    "SMS_HOOK_PASSWORD": "x-secret",
    "THINGSPACE_CLIENT_ID": "i",
    "THINGSPACE_CLIENT_SECRET": "s-secret",
    "THINGSPACE_USERNAME": "u",
    "THINGSPACE_PASSWORD": "p-secret",
}


def test_validate_example() -> None:
    code, out, err = run("validate", "-c", str(EXAMPLE))
    assert code == 0, err
    assert "valid: 3 account(s), 10 registration(s)" in out
    # the secret reference is unset here: a warning, not an error, for validate
    assert "SMS_HOOK_PASSWORD" in err and "warning" in err


def test_validate_missing_file_is_one_line() -> None:
    code, _out, err = run("validate", "-c", "/nonexistent.yaml")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("/nonexistent.yaml")
    assert "Traceback" not in err


def test_validate_reports_located_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\naccounts:\n  a:\n    callbacks:\n      DeviceUsge:\n        url: x\n"
    )
    code, _, err = run("validate", "-c", str(bad))
    assert code == 1
    assert f"{bad}:5:7: $.accounts.a.callbacks.DeviceUsge: " in err
    assert "did you mean 'DeviceUsage'" in err


def test_schema_prints_the_schema() -> None:
    code, out, _ = run("schema")
    assert code == 0
    assert json.loads(out)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"tscallbacks {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["frobnicate"],
        [],
        ["plan", "--output", "yaml"],
        ["plan", "--parallelism", "0"],
        ["plan", "--parallelism", "many"],
        ["export"],
    ],
)
def test_usage_errors_exit_1_not_2(argv: list[str]) -> None:
    code, _, err = run(*argv)
    assert code == 1
    assert err.startswith("Error: ") and err.count("\n") == 1


def test_missing_credentials(tmp_path: Path) -> None:
    code, _, err = run("plan", "-c", str(EXAMPLE), env={"SMS_HOOK_PASSWORD": "x-secret"})
    assert code == 1
    assert "THINGSPACE_CLIENT_ID" in err and "--simulator" in err


def test_unset_secret_reference_is_an_error_for_plan() -> None:
    code, _, err = run("plan", "-c", str(EXAMPLE), "--simulator")
    assert code == 1
    assert "SMS_HOOK_PASSWORD" in err and "warning" not in err.split("SMS_HOOK_PASSWORD")[0][-20:]


@pytest.mark.parametrize(
    "endpoint", ["http://thingspace.verizon.com", "ftp://x", "https://u:p@thingspace.verizon.com"]
)
def test_unsafe_endpoints_refused(endpoint: str) -> None:
    env = dict(CREDENTIALS)
    code, _, err = run("plan", "-c", str(EXAMPLE), "--endpoint", endpoint, env=env)
    assert code == 1 and err.startswith("Error: ")


def test_simulator_and_endpoint_conflict() -> None:
    code, _, err = run(
        "plan",
        "-c",
        str(EXAMPLE),
        "--simulator",
        "--endpoint",
        "https://x.example.com",
        env={"SMS_HOOK_PASSWORD": "x-secret"},
    )
    assert code == 1 and "--simulator and --endpoint" in err


def test_apply_without_terminal_plans_then_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"SMS_HOOK_PASSWORD": "x-secret"}
    code, out, err = run("apply", "--simulator", "-c", str(EXAMPLE), env=env)
    assert code == 1
    assert "not a terminal" in err and "Plan: 10 to create" in out
    code, _, _ = run("plan", "--simulator", "--detailed-exitcode", "-c", str(EXAMPLE), env=env)
    assert code == 2  # nothing was applied


def test_apply_prompt_declined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(
        "apply",
        "--simulator",
        "-c",
        str(EXAMPLE),
        env={"SMS_HOOK_PASSWORD": "x-secret"},
        stdin=FakeTty("no\n"),
    )
    assert code == 1
    assert "Enter a value:" in out and "apply cancelled" in err
    code, out, _ = run(
        "plan",
        "--simulator",
        "--detailed-exitcode",
        "-c",
        str(EXAMPLE),
        env={"SMS_HOOK_PASSWORD": "x-secret"},
    )
    assert code == 2  # nothing was applied


def test_apply_prompt_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"SMS_HOOK_PASSWORD": "x-secret"}
    code, out, err = run(
        "apply", "--simulator", "-c", str(EXAMPLE), env=env, stdin=FakeTty("yes\n")
    )
    assert code == 0, err
    assert "Apply complete!" in out
    assert run("plan", "--simulator", "--detailed-exitcode", "-c", str(EXAMPLE), env=env)[0] == 0


def test_unexpected_error_is_one_line_unless_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(args: object, io: object) -> None:
        raise RuntimeError("kaboom with detail")

    monkeypatch.setattr(schema_command, "run", boom)
    code, _, err = run("schema")
    assert code == 1 and "Traceback" not in err and "internal error (RuntimeError)" in err
    code, _, err = run("schema", "--debug")
    assert code == 1 and "Traceback" in err


def test_our_own_text_is_never_searched_for_secrets() -> None:
    # A password that happens to spell part of our output must not mask that part: the
    # marker would stand exactly where the password's letters stood.
    env = {"SMS_HOOK_PASSWORD": "registration"}
    code, out, err = run("validate", "-c", str(EXAMPLE), env=env)
    assert code == 0, err
    assert out == f"{EXAMPLE}: valid: 3 account(s), 10 registration(s).\n"


def test_colour_rules() -> None:
    assert use_color(FakeTty(), {}) is True
    assert use_color(FakeTty(), {"NO_COLOR": "1"}) is False
    assert use_color(FakeTty(), {"TERM": "dumb"}) is False
    assert use_color(io.StringIO(), {}) is False


def test_export_names_are_unique_per_registration() -> None:
    from reconciler.render.export import render_export
    from tests.helpers import current, reg

    state = current({a: {"DeviceUsage": reg("https://h.example.com/u", None, "pw-secret")}
                     for a in ("col-a", "col_a", "col.a")})  # fmt: skip
    text, notes = render_export(state, ["col-a", "col_a", "col.a"])
    names = [line.split("${env:")[1].rstrip('}"') for line in text.splitlines() if "${env:" in line]
    assert names == [
        "TSC_COL_A_DEVICEUSAGE_PASSWORD",
        "TSC_COL_A_DEVICEUSAGE_PASSWORD_2",
        "TSC_COL_A_DEVICEUSAGE_PASSWORD_3",
    ]
    assert "pw-secret" not in text + "".join(notes)


def test_a_missing_ca_bundle_is_one_escaped_line(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(CREDENTIALS)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nowhere/ca.pem\nError: forged")
    code, out, err = run("plan", "-c", str(EXAMPLE), "--endpoint", "https://127.0.0.1:9", env=env)
    assert code == 1 and out == ""
    assert err == (
        "Error: cannot use the CA bundle /nowhere/ca.pem\\nError: forged: there is no such "
        "file or directory; check REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE\n"
    )


def test_only_the_program_freezes_its_objects_before_exiting() -> None:
    """As the program (no argv) the run's objects are frozen out of the interpreter's
    last collection; a caller passing argv (these tests) keeps its collector as it was."""
    import gc
    import subprocess
    import sys

    before = gc.get_freeze_count()
    assert run("--version")[0] == 0
    assert gc.get_freeze_count() == before
    program = (
        "import gc, sys; from reconciler.cli import main; sys.argv = ['tscallbacks', "
        "'--version']; status = main(); print(status, gc.get_freeze_count() > 0)"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == "0 True", done.stderr
