"""Every way an application process can end, with the collector up and down.

After the process is gone (and a later process drained its spool), every
packet acknowledged to the spool is stored exactly once, and the process's
own counters account for every packet it emitted.

The twelve application processes are started together (they spend most of
their life starting up and waiting), then each test ends its own.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    CollectorProcess,
    RunningApp,
    assert_exactly_once,
    closed_endpoint,
    drain,
    ids,
    start_app,
)

pytestmark = pytest.mark.faults

COUNT = 300
MODES = ["return", "sys.exit", "sigint", "sigterm", "sigterm-default", "sigkill"]
SIGNALS = {
    "sigint": signal.SIGINT,
    "sigterm": signal.SIGTERM,
    "sigterm-default": signal.SIGTERM,
    "sigkill": signal.SIGKILL,
}


class Launched:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.apps: dict[tuple[str, str], RunningApp] = {}

    @staticmethod
    def prefix(state: str, mode: str) -> str:
        return f"{state}-{mode.replace('-', '_')}"  # no prefix is the start of another

    def spool(self, state: str, mode: str) -> Path:
        return self.base / f"{state}-{mode}" / "spool"

    def start(self, state: str, mode: str, endpoint: str) -> None:
        directory = self.base / f"{state}-{mode}"
        directory.mkdir(parents=True)
        options: dict[str, Any] = {
            "spool": self.spool(state, mode),
            "count": COUNT,
            "prefix": self.prefix(state, mode),
            # up: time to deliver on a busy machine; down: retries give up after 1 s
            "shutdown_timeout": 10.0 if state == "up" else 3.0,
            "max_elapsed": 1.0,
            "exit": mode,
            # SIGKILL cannot be handled: the app says READY once everything is delivered or
            # acknowledged to the spool; the other signals arrive while packets are queued
            "ready_after": "flush" if mode == "sigkill" else "submit",
        }
        self.apps[(state, mode)] = start_app(directory, endpoint, **options)


@pytest.fixture(scope="module")
def launched(
    tmp_path_factory: pytest.TempPathFactory, shared_collector: CollectorProcess
) -> Iterator[Launched]:
    runs = Launched(tmp_path_factory.mktemp("exits"))
    for mode in MODES:
        runs.start("up", mode, shared_collector.url)
        runs.start("down", mode, closed_endpoint())
    yield runs
    for app in runs.apps.values():
        if app.proc.poll() is None:
            app.proc.kill()
        app.finish()


def _end(app: RunningApp, mode: str) -> dict[str, int]:
    if mode in SIGNALS:
        app.wait_line("READY")
        app.signal(SIGNALS[mode])
    run = app.finish()
    if mode in ("return", "sys.exit", "sigterm"):
        assert run.returncode in (0, 143), run.stderr
    assert "Traceback" not in run.stderr or mode == "sigint", run.stderr
    return run.stats  # empty when the process ended without running Python code


@pytest.mark.parametrize("mode", MODES)
def test_collector_up(launched: Launched, shared_collector: CollectorProcess, mode: str) -> None:
    """With the collector up, every packet is delivered before the process is gone."""
    stats = _end(launched.apps[("up", mode)], mode)
    if stats:
        assert stats["enqueued"] == COUNT
        assert stats["exported"] + stats["spooled"] == COUNT  # spooled only if the box is slow
        assert stats["dropped"] == 0
    drain(launched.spool("up", mode), shared_collector.url)
    prefix = launched.prefix("up", mode)
    assert_exactly_once(shared_collector, prefix, ids(prefix, COUNT))


@pytest.mark.parametrize("mode", MODES)
def test_collector_down(launched: Launched, shared_collector: CollectorProcess, mode: str) -> None:
    """With the collector down, every packet is spooled and a later process delivers it once."""
    stats = _end(launched.apps[("down", mode)], mode)
    if stats:
        assert stats["enqueued"] == COUNT
        assert stats["spooled"] == COUNT
        assert stats["dropped"] == 0
    prefix = launched.prefix("down", mode)
    assert shared_collector.request_ids(prefix) == []
    assert drain(launched.spool("down", mode), shared_collector.url) == COUNT
    assert_exactly_once(shared_collector, prefix, ids(prefix, COUNT))
