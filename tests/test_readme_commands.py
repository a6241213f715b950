"""The README's quick start runs as written: its first command's plan, then its apply block
(converging to exit 0), with the environment the README sets and nothing else."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from tests.e2e_support import COMMAND, REPO


def _sh_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Two commands")
    section = text[start : text.index("\n## ", start + 1)]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def _tscallbacks_steps(block: str) -> list[tuple[dict[str, str], list[str]]]:
    """Each ``tscallbacks`` invocation of a block: (environment it sets, arguments)."""
    exported: dict[str, str] = {}
    steps: list[tuple[dict[str, str], list[str]]] = []
    for line in block.splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words[:1] == ["export"]:
                exported.update(word.split("=", 1) for word in words[1:])  # type: ignore[misc]
                continue
            env = dict(exported)
            while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
                name, value = words.pop(0).split("=", 1)
                env[name] = value
            if words and words[0].endswith("/tscallbacks"):
                steps.append((env, words[1:]))
    return steps


def _run(tmp_path: Path, env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("THINGSPACE_", "TSCALLBACKS_"))
    }
    return subprocess.run(
        [str(COMMAND), *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_quick_start_plans_applies_and_converges(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    first, _tests, then = _sh_blocks()
    steps = _tscallbacks_steps(first) + _tscallbacks_steps(then)
    assert [args[0] for _, args in steps] == ["plan", "apply", "plan"]
    codes = []
    for env, args in steps:
        done = _run(tmp_path, env, args)
        assert done.returncode in (0, 2), done.stderr  # plan without --detailed-exitcode: 0
        codes.append(done.returncode)
    assert codes == [0, 0, 0]  # the last plan has --detailed-exitcode: 0 means converged
    secrets = sorted(
        p.relative_to(tmp_path).as_posix()
        for p in (tmp_path / ".tscallbacks" / "secrets").rglob("*.secret")
    )
    assert secrets == [
        f".tscallbacks/secrets/0252012345-00003/{service}.secret"
        for service in ("DeviceLocation", "Diagnostics", "Location")
    ]
    assert all((tmp_path / p).stat().st_mode & 0o777 == 0o600 for p in secrets)


def test_the_quick_start_needs_every_variable_it_sets(tmp_path: Path) -> None:
    """Leaving out any variable the README sets fails with one line (it sets what it needs)."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env, args = _tscallbacks_steps(_sh_blocks()[0])[0]
    assert env, "the first command sets the example's ${env:} values"
    for name in env:
        done = _run(tmp_path, {k: v for k, v in env.items() if k != name}, args)
        assert done.returncode == 1 and name in done.stderr and done.stderr.count("\n") == 1
