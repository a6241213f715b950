"""The pre-commit hook, as a user's repository runs it.

``pre-commit try-repo`` builds a fresh virtualenv and pip-installs this repository into it
(PyPI only: the hook has no other dependencies), so each run takes seconds: two runs in
all, one passing and one failing. Everything pre-commit, virtualenv and pip write goes
under the test's tmp directory, none of it to the home directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pre_commit.main import main as pre_commit_main  # type: ignore[import-untyped]

from tests.e2e_support import REPO

HOOK = "tscallbacks-validate"
TRY_ARGS = (HOOK, "--all-files", "--verbose")  # verbose: a passing hook's output too
UNSET = "TSC_PRECOMMIT_TEST_UNSET_PASSWORD"
VALID = f"""\
version: 1
accounts:
  "0252012345-00001":
    callbacks:
      DeviceUsage:
        url: https://hooks.example.com/thingspace/usage
      SMSDeliveryConfirmation:
        url: https://hooks.example.com:9001/thingspace/sms
        username: thingspace
        password: ${{env:{UNSET}}}
"""
# YAML in the same repository that is not a tscallbacks configuration: never handed to it.
OTHER_YAML = "name: not a tscallbacks configuration\nsteps: [1, 2]\n"


def _git(*args: str, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A folder for this module, and an environment that keeps every cache inside it."""
    base = tmp_path_factory.mktemp("pre-commit")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.pop(UNSET, None)
    env.update(
        PRE_COMMIT_HOME=str(base / "pre-commit-home"),
        XDG_CACHE_HOME=str(base / "cache"),  # pip's and virtualenv's caches
        XDG_DATA_HOME=str(base / "data"),
        TMPDIR=str(base / "tmp"),
        GIT_CONFIG_GLOBAL=os.devnull,  # the user's git settings (signing, hooks) stay out
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.com",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.com",
        NO_COLOR="1",
    )
    (base / "tmp").mkdir()
    return base, env


@pytest.fixture(scope="module")
def hook_repo(isolated: tuple[Path, dict[str, str]]) -> Path:
    """This working tree as a git repository of one commit, untracked new files included.

    ``try-repo`` on the checkout itself would install its last commit plus changes to
    tracked files only; this installs exactly what the rest of the suite tests.
    """
    base, env = isolated
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    target = base / "tscallbacks"
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    _git("init", "-q", cwd=target, env=env)
    _git("add", "-A", cwd=target, env=env)
    _git("commit", "-q", "-m", "snapshot", cwd=target, env=env)
    return target


def _try_repo(
    sample: Path, hook_repo: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), *TRY_ARGS],
        cwd=sample,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _sample(base: Path, name: str, config: str, env: dict[str, str]) -> Path:
    sample = base / name
    (sample / "docs").mkdir(parents=True)
    (sample / "callbacks.yaml").write_text(config, "utf-8")
    (sample / "docs" / "other.yaml").write_text(OTHER_YAML, "utf-8")
    _git("init", "-q", cwd=sample, env=env)
    _git("add", "-A", cwd=sample, env=env)
    return sample


def test_hook_passes_a_valid_configuration_without_secrets(
    isolated: tuple[Path, dict[str, str]], hook_repo: Path
) -> None:
    base, env = isolated
    result = _try_repo(_sample(base, "valid", VALID, env), hook_repo, env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "tscallbacks validate" in output and "Passed" in output
    # It really ran: its summary and the unset-variable warning are in the verbose output.
    assert "callbacks.yaml: valid: 1 account(s), 2 registration(s), 1 warning(s)." in output
    assert f"warning: environment variable {UNSET} is not set" in output


def test_hook_fails_with_the_located_error(
    isolated: tuple[Path, dict[str, str]], hook_repo: Path
) -> None:
    base, env = isolated
    broken = VALID.replace("example.com/thingspace/usage", "example.com:8080/thingspace/usage")
    result = _try_repo(_sample(base, "broken", broken, env), hook_repo, env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Failed" in output
    line = (
        "callbacks.yaml:6:14: $.accounts['0252012345-00001'].callbacks.DeviceUsage.url: "
        "port 8080 is not allowed by ThingSpace"
    )
    assert line in output


@pytest.fixture
def store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pre-commit opens its store on every command, even validate-manifest."""
    monkeypatch.setenv("PRE_COMMIT_HOME", str(tmp_path / "pre-commit-home"))


@pytest.mark.usefixtures("store_in_tmp")
def test_manifest_is_valid() -> None:
    assert pre_commit_main(["validate-manifest", str(REPO / ".pre-commit-hooks.yaml")]) == 0


@pytest.mark.usefixtures("store_in_tmp")
def test_a_broken_manifest_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / ".pre-commit-hooks.yaml").read_text("utf-8")
    broken = tmp_path / ".pre-commit-hooks.yaml"
    broken.write_text(text.replace("  entry: ", "  entyr: "), "utf-8")
    assert broken.read_text("utf-8") != text
    assert pre_commit_main(["validate-manifest", str(broken)]) == 1
    assert "Missing required key: entry" in capsys.readouterr().out
