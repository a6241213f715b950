"""``--account`` patterns, as pure functions: what they select, and what they refuse."""

from __future__ import annotations

import pytest

from reconciler.core.errors import UsageError
from reconciler.engine.target import Target, restrict, select
from tests.helpers import desired

STATE = desired({name: {} for name in ("fleet-1", "fleet-2", "fleet-10", "lab-1", "Fleet-3")})


@pytest.mark.parametrize(
    ("patterns", "chosen"),
    [
        ([], ["Fleet-3", "fleet-1", "fleet-10", "fleet-2", "lab-1"]),  # no target: all
        (["fleet-*"], ["fleet-1", "fleet-10", "fleet-2"]),  # case-sensitive
        (["fleet-?"], ["fleet-1", "fleet-2"]),
        (["fleet-[12]", "lab-1"], ["fleet-1", "fleet-2", "lab-1"]),
        (["lab-1", "lab-1"], ["lab-1"]),  # repeats count once
        (["*"], ["Fleet-3", "fleet-1", "fleet-10", "fleet-2", "lab-1"]),
    ],
)
def test_select(patterns: list[str], chosen: list[str]) -> None:
    target = select(STATE, patterns)
    assert list(target.accounts) == chosen
    assert target.targeted is bool(patterns)
    assert sorted(restrict(STATE, target).accounts) == chosen


def test_a_pattern_matching_nothing_is_one_line() -> None:
    with pytest.raises(UsageError) as caught:
        select(STATE, ["fleet-*", "FLEET-*", "lab"])
    assert caught.value.lines() == [
        "--account 'FLEET-*', 'lab' match no account in the configuration"
    ]
    with pytest.raises(UsageError, match=r"^--account 'x' matches no account"):
        select(STATE, ["x"])


def test_note_only_when_targeted() -> None:
    assert select(STATE, []).note() is None
    assert select(STATE, ["lab-*"]).note() == (
        "targeted run: --account 'lab-*' selects 1 account; the configuration's other "
        "accounts were neither read nor planned."
    )


def test_restrict_without_target_is_the_same_state() -> None:
    assert restrict(STATE, Target((), ())) is STATE
