"""``tscallbacks show PLANFILE``: the saved file, printed exactly as ``plan`` printed it.

End to end with the real command and the embedded simulator. The golden files are
what both commands print; regenerate with UPDATE_GOLDEN=1 after an intended change.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from reconciler import cli
from tests.e2e_support import Result, base_env, run
from tests.test_render import check_golden

LITERAL = "literal-hook-password-1"
SUFFIX = {"text": "txt", "json": "json", "markdown": "md"}

BEFORE = """\
version: 1
accounts:
  "0252012345-00001":
    callbacks:
      CarrierService:
        url: https://hooks.example.com/carrier
        username: ops
      SMSDeliveryConfirmation:
        url: https://hooks.example.com/sms-old
        password: ${env:SMS_HOOK_PASSWORD}
  TestAccount-2:
    callbacks:
      AlertService:
        url: https://hooks.example.com/alerts
      DeviceUsage:
        url: https://hooks.example.com/usage-2
"""

AFTER = f"""\
version: 1
accounts:
  "0252012345-00001":
    callbacks:
      DeviceUsage:
        url: http://hooks.example.com/usage
      Fota:
        url: https://hooks.example.com/fota
      SMSDeliveryConfirmation:
        url: https://hooks.example.com:9001/sms
        username: thingspace
        password: {LITERAL}
  TestAccount-2:
    prune: false
    callbacks:
      AlertService:
        url: https://hooks.example.com/alerts
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose embedded simulator holds BEFORE, and callbacks.yaml = AFTER."""
    path = tmp_path_factory.mktemp("show")
    config = path / "callbacks.yaml"
    config.write_text(BEFORE)
    done = run("apply", "--simulator", "--auto-approve", env=env(), cwd=path)
    assert done.code == 0, done.output
    config.write_text(AFTER)
    return path


def env() -> dict[str, str]:
    return base_env()


def both(workdir: Path, output: str) -> tuple[Result, Result]:
    planfile = f"plan-{output}.json"
    made = run("plan", "--simulator", "--out", planfile, "--output", output, env=env(),
               cwd=workdir)  # fmt: skip
    assert made.code == 0, made.output
    shown = run("show", planfile, "--output", output, env=env(), cwd=workdir)
    assert shown.code == 0, shown.output
    return made, shown


@pytest.mark.parametrize("output", sorted(SUFFIX))
def test_show_prints_exactly_what_plan_printed(workdir: Path, output: str) -> None:
    made, shown = both(workdir, output)
    assert shown.stdout == made.stdout
    check_golden(f"show.{SUFFIX[output]}", shown.stdout)
    for result in (made, shown):
        assert LITERAL not in result.output and "e2e-sms-hook-secret-value" not in result.output
    # the configuration's warnings: on stderr for both, in the document for json/markdown
    warnings = [line for line in made.stderr.splitlines() if ": warning: " in line]
    assert len(warnings) == 2 and "plain http" in warnings[0]
    assert "password is written in the file" in warnings[1]
    assert [line for line in shown.stderr.splitlines() if ": warning: " in line] == warnings
    assert f"plan-{output}.json: made " in shown.stderr
    if output == "json":
        doc = json.loads(shown.stdout)
        assert [(w["file"], w["line"], w["column"]) for w in doc["warnings"]] == [
            ("callbacks.yaml", 6, 14),
            ("callbacks.yaml", 12, 19),
        ]
        assert doc["warnings"][0]["path"] == (
            "$.accounts['0252012345-00001'].callbacks.DeviceUsage.url"
        )
    if output == "markdown":
        assert "### Warnings" in shown.stdout and "plain http" in shown.stdout


def test_show_needs_no_configuration_credentials_or_network(workdir: Path, tmp_path: Path) -> None:
    both(workdir, "text")
    lonely = tmp_path / "plan.json"
    lonely.write_text((workdir / "plan-text.json").read_text())
    code, out, err = run_in_process("show", str(lonely))  # empty environment, no simulator
    assert code == 0, err
    assert "Plan: 2 to create, 1 to update, 1 to delete." in out


def run_in_process(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env={}, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _saved(workdir: Path) -> str:
    both(workdir, "json")
    return (workdir / "plan-json.json").read_text()


BAD_FILES = {
    "empty": (lambda good: "", "it is not JSON"),
    "not json": (lambda good: "plan: yes\n", "it is not JSON"),
    "truncated": (lambda good: good[: len(good) // 2], "it is not JSON"),
    "foreign json": (lambda good: '{"name": "left-pad"}', "not written by"),
    "terraform plan": (
        lambda good: '{"format_version": "1.2", "terraform_version": "1.9.0"}',
        "not written by",
    ),
    "edited password": (
        lambda good: good.replace('"password": "(sensitive)"', '"password": "hunter2-x"', 1),
        "incomplete or was edited",
    ),
    "edited summary": (
        lambda good: good.replace('"create": 2', '"create": 0', 1),
        "incomplete or was edited",
    ),
    "unknown family": (
        lambda good: good.replace('"family": "fota"', '"family": "soap"', 1),
        "incomplete or was edited",
    ),
    "control characters": (lambda good: "\x1b[2J\x00\n", "it is not JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_corrupted_or_foreign_file_is_one_line(workdir: Path, tmp_path: Path, case: str) -> None:
    good = _saved(workdir)
    make, message = BAD_FILES[case]
    bad = make(good)
    assert bad != good
    path = tmp_path / "plan.json"
    path.write_text(bad)
    code, out, err = run_in_process("show", str(path), "--output", "markdown")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"Error: {path}: ")
    assert message in err and err.isprintable() is False  # one line: only its newline
    assert err[:-1].isprintable()


def test_a_missing_file_or_a_directory_is_one_line(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.json", tmp_path):
        code, out, err = run_in_process("show", str(path))
        assert code == 1 and out == ""
        assert err.count("\n") == 1 and "cannot read plan file" in err
