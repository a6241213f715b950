"""Every file under tests/cases/invalid/ fails with exactly the lines in its .expected file."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import load_config
from reconciler.errors import ConfigError

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
