"""The GitHub Action and the CI examples: valid for their platforms, and doing what they say.

Schemas: check-jsonschema's built-in copies, run in-process, so the autouse guard in
conftest.py fails the test if anything tries to download one. The action's shell steps
run here as GitHub would run them (``bash -eo pipefail``, its files and outputs), against
the simulator; its comment script runs under node with a recording fake of the API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from check_jsonschema import main as check_jsonschema_main  # type: ignore[import-untyped]
from click.testing import CliRunner

from tests.e2e_support import EXAMPLE, REPO

ACTION = REPO / "action.yml"
GITHUB_WORKFLOW = REPO / "examples" / "github-workflow.yml"
GITLAB_CI = REPO / "examples" / "gitlab-ci.yml"
MARKER = "<!-- tscallbacks-plan -->"
# Values no output may show: the action must never print the caller's secrets.
SECRETS = {
    "THINGSPACE_CLIENT_ID": "ci-client-id-7f3a9",
    "THINGSPACE_CLIENT_SECRET": "ci-client-secret-5d21c",
    "THINGSPACE_USERNAME": "ci-user-88e0b",
    "THINGSPACE_PASSWORD": "ci-password-b4c67",
    "SMS_HOOK_PASSWORD": "ci-sms-hook-secret-91aa0",
}


def _check_jsonschema(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(check_jsonschema_main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _schema_args(path: Path) -> list[str]:
    if path == ACTION:
        return ["--builtin-schema", "vendor.github-actions"]
    if path == GITHUB_WORKFLOW:
        return ["--builtin-schema", "vendor.github-workflows"]
    # GitLab's own pre-commit hook turns `!reference` tags into data before checking.
    return ["--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci"]


@pytest.mark.parametrize("path", [ACTION, GITHUB_WORKFLOW, GITLAB_CI], ids=lambda p: p.name)
def test_valid_against_the_official_schema(path: Path) -> None:
    code, output = _check_jsonschema(*_schema_args(path), str(path))
    assert code == 0, output
    assert "ok -- validation done" in output


@pytest.mark.parametrize(
    ("path", "good", "typo"),
    [
        (GITHUB_WORKFLOW, "    runs-on: ubuntu-latest\n", "    runs_on: ubuntu-latest\n"),
        (ACTION, "  using: composite\n", "  usin: composite\n"),
        (
            GITLAB_CI,
            "  resource_group: tscallbacks-apply\n",
            "  resource_grup: tscallbacks-apply\n",
        ),
    ],
    ids=["workflow", "action", "gitlab-ci"],
)
def test_a_typo_d_key_fails_the_check(path: Path, good: str, typo: str, tmp_path: Path) -> None:
    text = path.read_text("utf-8")
    assert good in text
    broken = tmp_path / path.name
    broken.write_text(text.replace(good, typo), "utf-8")
    code, output = _check_jsonschema(*_schema_args(path), str(broken))
    assert code == 1, output
    expected = typo.strip().split(":")[0]
    # Either the unknown key is named, or the key it should have been is missing.
    assert f"'{expected}' was unexpected" in output or (
        f"'{good.strip().split(':')[0]}' is a required property" in output
    ), output


# -- the example GitHub workflow -------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def _on(workflow: dict[str, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    triggers = workflow["on"] if "on" in workflow else workflow[True]  # type: ignore[index]
    assert isinstance(triggers, dict)
    return triggers


def test_workflow_plans_pull_requests_applies_main_and_checks_drift_nightly() -> None:
    workflow = _load(GITHUB_WORKFLOW)
    assert set(_on(workflow)) == {"pull_request", "push", "schedule"}
    assert _on(workflow)["push"] == {"branches": ["main"]}
    jobs = workflow["jobs"]
    modes = {}
    for name, job in jobs.items():
        action_steps = [s for s in job["steps"] if s.get("uses", "").endswith("/tscallbacks@main")]
        assert len(action_steps) == 1, name
        modes[job["if"]] = action_steps[0]["with"]["mode"]
    assert modes == {
        "github.event_name == 'pull_request'": "plan",
        "github.event_name == 'push'": "apply",
        "github.event_name == 'schedule'": "drift",
    }
    assert jobs["apply"]["concurrency"] == {
        "group": "tscallbacks-apply",
        "cancel-in-progress": False,
    }
    assert "concurrency" not in jobs["drift"]


def test_workflow_permissions_are_minimal() -> None:
    workflow = _load(GITHUB_WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    granted = {name: job.get("permissions") for name, job in workflow["jobs"].items()}
    assert granted == {
        "plan": {"contents": "read", "pull-requests": "write"},
        "apply": None,
        "drift": None,
    }


def test_credentials_come_from_secrets_only() -> None:
    workflow = _load(GITHUB_WORKFLOW)
    assert workflow["env"] == {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS}
    assert "secrets." not in ACTION.read_text("utf-8")


# -- the example GitLab pipeline -------------------------------------------------------


def test_gitlab_pipeline_stages() -> None:
    pipeline = _load(GITLAB_CI)
    scripts = {
        name: " ".join(pipeline[name]["script"]) for name in ("validate", "plan", "apply", "drift")
    }
    assert "tscallbacks validate" in scripts["validate"]
    assert "--output markdown > plan.md" in scripts["plan"]
    assert pipeline["plan"]["artifacts"]["paths"] == ["plan.md"]
    assert pipeline["plan"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert re.search(
        r"--out plan\.json .*tscallbacks apply --auto-approve plan\.json", scripts["apply"]
    )
    assert pipeline["apply"]["resource_group"] == "tscallbacks-apply"
    assert pipeline["apply"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'}
    ]
    assert "--detailed-exitcode" in scripts["drift"]
    assert pipeline["drift"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]


# -- the action's steps, run as GitHub runs a composite action --------------------------

_EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
_REFERENCE = re.compile(r"\b(?:inputs|steps|github)(?:\.[A-Za-z_][\w-]*)+")


@dataclass
class ActionRun:
    """One run of action.yml's steps; ``uses:`` steps are recorded, not run."""

    inputs: dict[str, str]
    workdir: Path
    temp: Path
    event: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    log: str = ""
    failed: str | None = None
    status: int = 0

    @property
    def summary(self) -> str:
        path = self.temp / "summary.md"
        return path.read_text("utf-8") if path.exists() else ""

    def lookup(self, reference: str) -> Any:
        head, _, rest = reference.partition(".")
        if head == "inputs":
            return self.inputs[rest]
        if head == "steps":
            step, _, output = rest.partition(".outputs.")
            return self.outputs.get(step, {}).get(output, "")
        value: Any = {"action_path": str(REPO), "token": "test-token", "event": self.event}
        for part in rest.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return value

    def expand(self, text: str) -> str:
        return _EXPRESSION.sub(lambda m: str(self.lookup(m.group(1))), text)

    def condition(self, expression: str) -> bool:
        """The few operators action.yml uses: references, '...' literals, ==, &&."""
        python = _REFERENCE.sub(lambda m: repr(self.lookup(m.group(0))), expression)
        python = python.replace("&&", " and ").replace("||", " or ")
        return bool(eval(python, {"__builtins__": {}}, {}))


def _action() -> dict[str, Any]:
    return _load(ACTION)


def _run_action(
    workdir: Path,
    tmp_path: Path,
    given: Mapping[str, str],
    *,
    event: dict[str, Any] | None = None,
    unset: tuple[str, ...] = (),
    path_first: Path | None = None,
) -> ActionRun:
    action = _action()
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    unknown = set(given) - set(inputs)
    assert not unknown, f"action.yml has no input {unknown}"
    inputs.update(given)
    temp = Path(tempfile.mkdtemp(prefix="runner-temp-", dir=tmp_path))  # one per job, as GitHub
    run = ActionRun(inputs=inputs, workdir=workdir, temp=temp, event=event or {})
    run.inputs = {name: run.expand(value) for name, value in inputs.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("THINGSPACE_")}
    env.update({k: v for k, v in SECRETS.items() if k not in unset})
    env.update(
        PATH=os.pathsep.join(
            [
                *([str(path_first)] if path_first else []),
                str(Path(sys.executable).parent),
                env.get("PATH", ""),
            ]
        ),
        RUNNER_TEMP=str(temp),
        GITHUB_STEP_SUMMARY=str(temp / "summary.md"),
        NO_COLOR="1",
    )
    for step in action["runs"]["steps"]:
        name = step.get("name", step.get("uses", "?"))
        if "if" in step and not run.condition(step["if"]):
            continue
        run.ran.append(name)
        if "uses" in step or name == "Install tscallbacks":
            continue  # setup-python and github-script are GitHub's; tscallbacks is installed
        outputs_file = temp / f"output-{len(run.ran)}"
        outputs_file.write_text("", "utf-8")
        step_env = {k: run.expand(str(v)) for k, v in step.get("env", {}).items()}
        assert step["shell"] == "bash"
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workdir / run.expand(step.get("working-directory", ".")),
            env={**env, **step_env, "GITHUB_OUTPUT": str(outputs_file)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        run.log += proc.stdout + proc.stderr
        if "id" in step:
            pairs = outputs_file.read_text("utf-8").splitlines()
            run.outputs[step["id"]] = dict(line.split("=", 1) for line in pairs)
        if proc.returncode != 0:
            run.failed, run.status = name, proc.returncode
            break
    for secret in SECRETS.values():
        assert secret not in run.log + run.summary + json.dumps(run.outputs)
    return run


# The example configuration in a sub-folder, against the simulator.
SIMULATED = {"working-directory": "config", "simulator": "true"}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    (folder / "config").mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "config" / "callbacks.yaml")
    return folder


def test_action_plan_writes_the_summary_and_reports_changes(workdir: Path, tmp_path: Path) -> None:
    run = _run_action(workdir, tmp_path, SIMULATED)
    assert run.failed is None, run.log
    assert run.outputs["plan"] == {"exitcode": "2", "has-changes": "true"}
    assert run.summary.startswith("## tscallbacks plan\n")
    assert "**Plan: 10 to create, 0 to update, 0 to delete.**" in run.summary
    assert "## tscallbacks plan" in run.log  # the plan is in the job log too
    assert "Comment the plan on the pull request" not in run.ran  # not a pull_request event
    assert "Apply the saved plan" not in run.ran


def test_action_comments_on_pull_requests_only_in_plan_mode(workdir: Path, tmp_path: Path) -> None:
    pr = {"pull_request": {"number": 12}}
    run = _run_action(workdir, tmp_path, SIMULATED, event=pr)
    assert "Comment the plan on the pull request" in run.ran
    quiet = _run_action(workdir, tmp_path, {**SIMULATED, "comment": "false"}, event=pr)
    assert "Comment the plan on the pull request" not in quiet.ran


def test_action_apply_makes_the_saved_plan_then_drift_is_clean(
    workdir: Path, tmp_path: Path
) -> None:
    drift = _run_action(workdir, tmp_path, {**SIMULATED, "mode": "drift"})
    assert drift.failed == "Plan" and drift.status == 2
    assert "::error title=tscallbacks drift::" in drift.log
    assert "**Plan: 10 to create" in drift.summary

    apply = _run_action(workdir, tmp_path, {**SIMULATED, "mode": "apply"})
    assert apply.failed is None, apply.log
    assert "Apply the saved plan" in apply.ran
    assert "Apply complete! Changes made: 10 created" in apply.log
    assert apply.summary.rstrip().endswith("**Applied.** The changes above were made.")

    again = _run_action(workdir, tmp_path, {**SIMULATED, "mode": "drift"})
    assert again.failed is None, again.log
    assert again.outputs["plan"] == {"exitcode": "0", "has-changes": "false"}
    unchanged = _run_action(workdir, tmp_path, {**SIMULATED, "mode": "apply"})
    assert unchanged.failed is None and "Apply the saved plan" not in unchanged.ran


def test_action_stops_at_an_invalid_configuration(workdir: Path, tmp_path: Path) -> None:
    config = workdir / "config" / "callbacks.yaml"
    config.write_text(config.read_text("utf-8").replace("example.com/", "example.com:8080/", 1))
    run = _run_action(workdir, tmp_path, SIMULATED)
    assert run.failed == "Validate" and run.status == 1
    assert re.search(r"^callbacks\.yaml:\d+:\d+: \$\.accounts\[.*port 8080", run.log, re.M)


def test_action_checks_listeners_only_when_asked(workdir: Path, tmp_path: Path) -> None:
    # No callback declared: the check runs and finds nothing to reach, so nothing leaves
    # this machine (the listener steps themselves are tested in tests/test_check.py).
    config = workdir / "config" / "callbacks.yaml"
    config.write_text('version: 1\naccounts:\n  "0252012345-00001":\n    callbacks: {}\n')
    run = _run_action(workdir, tmp_path, {**SIMULATED, "check-listeners": "true"})
    assert run.failed is None, run.log
    assert "### Listener check" in run.summary
    assert "Checked 0 listener URLs: 0 passed, 0 with warnings, 0 failed." in run.summary
    without = _run_action(workdir, tmp_path, SIMULATED)
    assert without.failed is None and "Listener check" not in without.summary
    refused = _run_action(workdir, tmp_path, {"check-listeners": "yes"})
    assert refused.failed == "Check the inputs"
    assert "check-listeners take true or false, not 'yes'" in refused.log


def test_action_shows_the_findings_when_a_listener_fails(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for tscallbacks whose plan does what plan --check-listeners does when a
    # listener fails: the plan and the findings on stdout, then exit 1.
    stand_in = tmp_path / "bin"
    stand_in.mkdir()
    script = stand_in / "tscallbacks"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" != plan ]; then exec "$REAL_TSCALLBACKS" "$@"; fi\n'
        'echo "plan $*" > "$RUNNER_TEMP/argv"\n'
        "printf '## tscallbacks plan\\n\\n### Listener check\\n\\n- **error** https fails\\n'\n"
        "exit 1\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("REAL_TSCALLBACKS", str(Path(sys.executable).with_name("tscallbacks")))
    run = _run_action(
        workdir,
        tmp_path,
        {**SIMULATED, "mode": "apply", "check-listeners": "true"},
        path_first=stand_in,
    )
    assert run.failed == "Plan" and run.status == 1
    assert "--check-listeners" in (run.temp / "argv").read_text("utf-8").split()
    assert "- **error** https fails" in run.log
    assert run.summary.startswith("## tscallbacks plan\n\n### Listener check\n")
    assert run.summary.endswith(
        "tscallbacks plan failed (exit 1); the errors are in the job log.\n"
    )
    assert "Apply the saved plan" not in run.ran


def test_the_examples_offer_the_listener_check() -> None:
    # The workflow's commented line names a real input of the action.
    line = next(
        line
        for line in GITHUB_WORKFLOW.read_text("utf-8").splitlines()
        if "check-listeners" in line
    )
    assert line.strip().startswith('# check-listeners: "true"')
    assert _action()["inputs"]["check-listeners"]["default"] == "false"
    pipeline = _load(GITLAB_CI)
    assert pipeline["variables"]["TSCALLBACKS_CHECK_LISTENERS"] == "false"  # opt-in
    job = pipeline["listeners"]
    assert job["rules"] == [
        {
            "if": '$CI_PIPELINE_SOURCE == "merge_request_event" && '
            '$TSCALLBACKS_CHECK_LISTENERS == "true"'
        }
    ]
    assert job["script"][0].startswith('tscallbacks check -c "$TSCALLBACKS_CONFIG"')
    assert job["artifacts"]["paths"] == ["listeners.md"]


def test_the_gitlab_listener_job_fails_when_a_listener_fails(tmp_path: Path) -> None:
    # Its script lines run as GitLab runs them: one shell, stopping at the first failure.
    job = _load(GITLAB_CI)["listeners"]
    stand_in = tmp_path / "tscallbacks"
    for code in (0, 1, 2):
        stand_in.write_text(f"#!/bin/sh\necho '## tscallbacks listener check'\nexit {code}\n")
        stand_in.chmod(0o755)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(job["script"])],
            cwd=tmp_path,
            env={"PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == code
        assert proc.stdout == "## tscallbacks listener check\n"  # shown also when it fails


def test_action_refuses_an_unknown_mode(workdir: Path, tmp_path: Path) -> None:
    run = _run_action(workdir, tmp_path, {"mode": "destroy"})
    assert run.failed == "Check the inputs"
    assert "mode must be plan, apply or drift, not 'destroy'" in run.log


def test_action_plan_failure_fails_the_step(workdir: Path, tmp_path: Path) -> None:
    # validate only warns about an unset ${env:NAME}; plan refuses it, before any request.
    run = _run_action(
        workdir,
        tmp_path,
        SIMULATED,
        unset=("SMS_HOOK_PASSWORD",),
    )
    assert run.failed == "Plan" and run.status == 1, run.log
    assert "Validate" in run.ran
    assert "environment variable SMS_HOOK_PASSWORD is not set" in run.log
    assert run.summary == "tscallbacks plan failed (exit 1); the errors are in the job log.\n"
    assert "plan" not in run.outputs or "exitcode" not in run.outputs["plan"]


# -- the pull-request comment, updated in place ------------------------------------------

_HARNESS = r"""
const fs = require("fs");
const given = JSON.parse(fs.readFileSync(0, "utf8"));
const calls = [];
const github = {
  rest: { issues: {
    listComments: "issues.listComments",
    updateComment: async (args) => { calls.push(["update", args]); },
    createComment: async (args) => { calls.push(["create", args]); },
  } },
  paginate: async (method, args) => {
    calls.push(["list", { method, ...args }]);
    return given.comments;
  },
};
const context = {
  serverUrl: "https://github.test", runId: 99, sha: "merge0000000",
  repo: { owner: "acme", repo: "callbacks" }, issue: { number: 12 },
  payload: { pull_request: { number: 12, head: { sha: "1234567890abcdef" } } },
};
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction("require", "github", "context", given.script)(require, github, context)
  .then(() => process.stdout.write(JSON.stringify(calls)));
"""


def _comment_script() -> str:
    steps = [
        s
        for s in _action()["runs"]["steps"]
        if s.get("uses", "").startswith("actions/github-script@")
    ]
    assert len(steps) == 1
    script = steps[0]["with"]["script"]
    assert isinstance(script, str)
    return script


def _comment(
    tmp_path: Path, plan: str, comments: list[dict[str, Any]], env: Mapping[str, str] | None = None
) -> list[list[Any]]:
    node = shutil.which("node")
    assert node, "node runs the action's github-script step here; install nodejs"
    (tmp_path / "tscallbacks-plan.md").write_text(plan, "utf-8")
    proc = subprocess.run(
        [node, "-e", _HARNESS],
        input=json.dumps({"script": _comment_script(), "comments": comments}),
        env={
            "PATH": os.environ.get("PATH", ""),
            "RUNNER_TEMP": str(tmp_path),
            "CONFIG": "callbacks.yaml",
            "WORKING_DIRECTORY": ".",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    calls = json.loads(proc.stdout)
    assert isinstance(calls, list)
    return calls


PLAN_MD = "## tscallbacks plan\n\nNo changes. The callback registrations match the configuration.\n"


def test_comment_is_created_with_the_marker(tmp_path: Path) -> None:
    calls = _comment(tmp_path, PLAN_MD, [{"id": 5, "body": "LGTM"}])
    assert [c[0] for c in calls] == ["list", "create"]
    assert calls[0][1] == {
        "method": "issues.listComments",
        "owner": "acme",
        "repo": "callbacks",
        "issue_number": 12,
        "per_page": 100,
    }
    created = calls[1][1]
    assert created["issue_number"] == 12
    lines = created["body"].splitlines()
    assert lines[:3] == [MARKER, "<!-- config: callbacks.yaml -->", "## tscallbacks plan"]
    assert "`callbacks.yaml` at 1234567" in created["body"]
    assert "https://github.test/acme/callbacks/actions/runs/99" in created["body"]


def test_comment_is_updated_in_place(tmp_path: Path) -> None:
    first = _comment(tmp_path, "## tscallbacks plan\n\nold plan\n", [])[1][1]["body"]
    comments = [
        {"id": 1, "body": "a review"},
        {"id": 2, "body": first},
        {"id": 3, "body": f"{MARKER}\n<!-- config: other/callbacks.yaml -->\nanother config"},
    ]
    calls = _comment(tmp_path, PLAN_MD, comments)
    assert [c[0] for c in calls] == ["list", "update"]
    assert calls[1][1]["comment_id"] == 2
    assert "No changes." in calls[1][1]["body"] and "old plan" not in calls[1][1]["body"]
    # A second configuration of the same repository keeps its own comment.
    other = _comment(tmp_path, PLAN_MD, comments[:2], env={"WORKING_DIRECTORY": "other"})
    assert [c[0] for c in other] == ["list", "create"]


def test_a_long_plan_is_cut_to_fit_a_comment(tmp_path: Path) -> None:
    row = (
        "| create | `A-1` | DeviceUsage | url |  | `https://hooks.example.com/" + "x" * 60 + "` |\n"
    )
    plan = "## tscallbacks plan\n\n" + row * 2000
    body = _comment(tmp_path, plan, [])[1][1]["body"]
    assert len(body) < 65536
    assert "the whole plan is in the job summary" in body
    table = [line for line in body.splitlines() if line.startswith("|")]
    assert table and all(line == row.rstrip("\n") for line in table)  # whole rows only


def test_action_apply_delivers_shared_secrets_only_where_told(
    workdir: Path, tmp_path: Path
) -> None:
    config = workdir / "config" / "callbacks.yaml"
    config.write_text(
        'version: 1\naccounts:\n  "0252012345-00009":\n    callbacks:\n'
        "      Location:\n        url: https://hooks.example.com/location\n",
        "utf-8",
    )
    refused = _run_action(workdir, tmp_path, {**SIMULATED, "mode": "apply"})
    assert refused.failed == "Apply the saved plan" and refused.status == 1
    assert "--secrets-dir" in refused.log
    assert not (workdir / "config" / "secrets").exists()

    applied = _run_action(
        workdir, tmp_path, {**SIMULATED, "mode": "apply", "secrets-dir": "secrets"}
    )
    assert applied.failed is None, applied.log
    [secret] = (workdir / "config" / "secrets").rglob("*.secret")
    assert secret.stat().st_mode & 0o777 == 0o600
    value = secret.read_text("utf-8").strip()
    assert value and value not in applied.log and value not in applied.summary
