"""What a run keeps while its requests are under way."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reconciler.cli.connection import long_lived


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def _collected(thing: object) -> bool:
    """Whether the cycle collector walks ``thing`` (not in the permanent generation)."""
    return any(o is thing for o in gc.get_objects())


def test_what_exists_before_the_requests_is_left_out_of_collections() -> None:
    before = [1]  # a container: tracked by the collector
    assert gc.get_freeze_count() == 0 and _collected(before)
    with long_lived():
        assert gc.get_freeze_count() > 0
        assert not _collected(before)
        during = [2]
        assert _collected(during)  # what the run makes is collected as usual
    assert gc.get_freeze_count() == 0
    assert _collected(before)


def test_undone_when_the_run_fails() -> None:
    with pytest.raises(RuntimeError), long_lived():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_a_callers_frozen_objects_stay_frozen() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    with long_lived():
        pass
    assert gc.get_freeze_count() == frozen


def test_the_embedded_simulator_is_read_by_one_worker() -> None:
    from reconciler.cli.connection import readers
    from reconciler.cli.parser import build_parser

    parser = build_parser()
    assert readers(parser.parse_args(["plan", "--simulator", "--parallelism", "16"])) == 1
    assert readers(parser.parse_args(["plan", "--parallelism", "16"])) == 16
    assert readers(parser.parse_args(["export", "--simulator"])) == 1
    assert readers(parser.parse_args(["apply", "--parallelism", "8"])) == 8
