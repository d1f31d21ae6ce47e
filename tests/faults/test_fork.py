"""Forked workers: every child's packets arrive, none twice, and the parent's are not resent."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import CollectorProcess, assert_exactly_once, ids, run_app

pytestmark = pytest.mark.faults

COUNT = 150
CHILDREN = 3


def _expected(prefix: str) -> set[str]:
    expected = ids(f"{prefix}-parent-a", COUNT) | ids(f"{prefix}-parent-b", COUNT)
    for index in range(CHILDREN):
        expected |= ids(f"{prefix}-child{index}", COUNT)
    return expected


@pytest.mark.parametrize("pattern", ["mp", "prefork"])
def test_forked_children_deliver_everything_once(
    tmp_path: Path, shared_collector: CollectorProcess, pattern: str
) -> None:
    """The parent started the pipeline, then forked workers (multiprocessing or pre-fork)."""
    prefix = f"fork-{pattern}"
    before = shared_collector.health()
    run = run_app(
        tmp_path,
        shared_collector.url,
        count=COUNT,
        prefix=prefix,
        fork=pattern,
        children=CHILDREN,
        spool=tmp_path / "spool",
        shutdown_timeout=15,
    )
    assert run.returncode == 0, run.stderr
    if pattern == "prefork":
        assert run.report["children"] == [0] * CHILDREN
    replayed = run.report["spool"]["acked"]  # a slow child may spool; the parent delivers it
    assert run.stats["exported"] - replayed == 2 * COUNT  # its own, never its children's again
    assert_exactly_once(shared_collector, prefix, _expected(prefix))
    after = shared_collector.health()
    assert after["duplicates"] == before["duplicates"]  # nothing was sent twice
