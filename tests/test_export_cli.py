"""``export --account``: both documented forms, and an account the API does not know."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import cli
from reconciler.simulator import Simulator, SimulatorConfig
from reconciler.thingspace.credentials import SIMULATOR_DEFAULTS, Credentials


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    config = SimulatorConfig(
        credentials=Credentials.for_simulator({}), accounts=frozenset({"A-1", "A-2"})
    )
    with Simulator(config) as simulator:
        yield simulator


def _run(sim: Simulator, *argv: str) -> tuple[int, str, str]:
    env = {**SIMULATOR_DEFAULTS, "THINGSPACE_ENDPOINT": sim.base_url}
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), env=env, stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["--account", "A-1", "A-2"],  # as the README writes it: --account NAME...
        ["--account", "A-1", "--account", "A-2"],
        ["--account", "A-1", "A-2", "--account", "A-1"],  # repeats are exported once
    ],
)
def test_several_accounts_either_way(sim: Simulator, argv: list[str]) -> None:
    code, out, err = _run(sim, "export", *argv)
    assert code == 0, err
    assert [line for line in out.splitlines() if line.startswith('  "')] == [
        '  "A-1":',
        '  "A-2":',
    ]


def test_account_is_required(sim: Simulator) -> None:
    code, _, err = _run(sim, "export", "--account")
    assert code == 1 and err.count("\n") == 1 and "--account" in err


def test_unknown_account_is_one_line_and_writes_nothing(sim: Simulator, tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    code, out, err = _run(
        sim, "export", "--account", "A-1", "--account", "NOPE-9", "-o", str(target)
    )
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "Error: account 'NOPE-9' was not found, or these credentials cannot read it; "
        "nothing was exported (GET /api/"
    ), err
    assert not target.exists()


@pytest.mark.parametrize("name", ["A-1\n", "A-1\r", "A-\u200b1"])
def test_account_with_invisible_or_line_breaking_characters_is_refused(
    sim: Simulator, name: str
) -> None:
    code, out, err = _run(sim, "export", "--account", name)
    assert code == 1 and out == "" and err.count("\n") == 1 and "account name contains" in err
