"""Per-request overhead of each configuration on real framework workloads.

Everything runs in one process. In every round, each workload runs one
*block* per configuration, in an order rotated from round to round:

    attach -> warm-up requests -> flush -> [timed requests -> flush] -> detach

Caller wall time is taken around every request; ``time.process_time()``
(every thread of the process: the exporters' background work included)
around the bracketed part, final flush included. Wall overhead is the median
over all timed requests of a configuration minus the baseline's (blocks are
interleaved and their order rotates, so drifts of the machine's load hit
every configuration alike; the JSON also has the median of per-round paired
differences). CPU per request is the CPU of all timed blocks divided by
their requests.

A sleeper thread sleeps 10 ms at a time during the whole run; how late it
wakes up during a block shows how long the configuration kept other threads
of the application waiting (GIL holds, CPU-bound export work). A full
(oldest-generation) garbage collection also holds every thread, for as long
as the whole heap takes to traverse (tens of ms with the frameworks loaded),
whichever thread's allocation set it off; such collections are counted per
block, and the worst lateness is also given over the sleeps no full
collection overlapped.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from configs import Config, Env, Session, check_clean, framework_state, missing
from services import Sink
from workloads import Run, Workload, units_per_request

SLEEP_S = 0.010
MIN_INVOCATIONS = 10
MIN_FLOOR_US = 5.0  # below this the no-op floor is noise; no ratio to it is shown


class FullCollections:
    """When the garbage collector traversed the whole heap (``perf_counter`` intervals)."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []
        self._started = 0.0

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.intervals.append((self._started, time.perf_counter()))

    def since(self, index: int) -> list[tuple[float, float]]:
        return self.intervals[index:]


class Sleeper:
    """A thread that sleeps 10 ms at a time and records how late it wakes, per block."""

    def __init__(self) -> None:
        self._samples: list[tuple[float, float]] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sleeper", daemon=True)

    def __enter__(self) -> Sleeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        perf = time.perf_counter
        while not self._stop.is_set():
            t0 = perf()
            time.sleep(SLEEP_S)
            late = perf() - t0 - SLEEP_S
            samples = self._samples
            if samples is not None:
                samples.append((t0, late))

    def begin(self) -> None:
        with self._lock:
            self._samples = []

    def end(self) -> list[tuple[float, float]]:
        """(start, lateness) of every sleep since :meth:`begin`."""
        with self._lock:
            samples, self._samples = self._samples or [], None
        return samples


@dataclass
class Cell:
    """One configuration on one workload, accumulated over rounds."""

    workload: Workload
    config: Config
    session: Session | None = None
    status: str = "ok"  # ok, n/a, error
    reason: str = ""
    samples_ns: list[int] = field(default_factory=list)
    round_median_us: dict[int, float] = field(default_factory=dict)
    round_cpu_us: dict[int, float] = field(default_factory=dict)
    round_n: dict[int, int] = field(default_factory=dict)
    flush_ms: list[float] = field(default_factory=list)
    sleeper_late_s: list[float] = field(default_factory=list)
    sleeper_late_no_gc_s: list[float] = field(default_factory=list)
    full_collections: int = 0
    sleeper_block_s: float = 0.0
    requests: int = 0  # every request sent through the session (warm-up included)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _block(
    cell: Cell,
    run: Run,
    rnd: int,
    n: int,
    warmup: int,
    sleeper: Sleeper,
    collections: FullCollections,
    clean: Any,
) -> None:
    session = cell.session
    assert session is not None
    callbacks = session.callbacks
    perf_ns = time.perf_counter_ns
    gc.collect()
    session.attach()
    try:
        for _ in range(warmup):
            run(callbacks)
        cell.requests += warmup
        session.flush()
        times = [0] * n
        seen = len(collections.intervals)
        sleeper.begin()
        wall0 = time.perf_counter()
        cpu0 = time.process_time()
        for i in range(n):
            t0 = perf_ns()
            run(callbacks)
            times[i] = perf_ns() - t0
        cell.requests += n
        f0 = time.perf_counter()
        session.flush()
        f1 = time.perf_counter()
        cpu1 = time.process_time()
        sleeps = sleeper.end()
        full = collections.since(seen)
        cell.full_collections += len(full)
        for start, late in sleeps:
            cell.sleeper_late_s.append(late)
            end = start + SLEEP_S + late
            if not any(a < end and b > start for a, b in full):
                cell.sleeper_late_no_gc_s.append(late)
        cell.sleeper_block_s += f1 - wall0
    finally:
        session.detach()
    leftover = check_clean(cell.workload.framework, clean)
    if leftover:
        raise RuntimeError(f"isolation check failed after detach: {leftover}")
    cell.samples_ns.extend(times)
    cell.round_median_us[rnd] = statistics.median(times) / 1000
    cell.round_cpu_us[rnd] = (cpu1 - cpu0) / n * 1e6
    cell.round_n[rnd] = n
    cell.flush_ms.append((f1 - f0) * 1000)


def run_overhead(
    workloads: list[Workload],
    configs: list[Config],
    env: Env,
    sink: Sink,
    *,
    rounds: int,
    invocations: int,
    warmup: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    built: dict[str, Run] = {}
    units: dict[str, int] = {}
    cells: dict[tuple[str, str], Cell] = {}
    out: dict[str, Any] = {"workloads": {}}

    for w in workloads:
        reason = w.missing()
        if reason:
            out["workloads"][w.name] = {"title": w.title, "status": "n/a", "reason": reason}
            continue
        try:
            built[w.name] = w.build()
            for _ in range(max(3, warmup)):  # first calls fill the frameworks' caches
                built[w.name](None)
            units[w.name] = units_per_request(w, built[w.name])
        except Exception as exc:
            out["workloads"][w.name] = {
                "title": w.title,
                "status": "error",
                "reason": f"{type(exc).__name__}: {exc}",
            }
            built.pop(w.name, None)
            continue
        for c in configs:
            cell = Cell(w, c)
            cells[(w.name, c.name)] = cell
            reason = missing(c, w, env)
            if reason:
                cell.status, cell.reason = "n/a", reason
                continue
            try:
                cell.session = c.make(w, env)
            except Exception as exc:
                cell.status, cell.reason = "error", f"setup: {type(exc).__name__}: {exc}"

    clean = {fw: framework_state(fw) for fw in {w.framework for w in workloads if w.name in built}}
    with Sleeper() as sleeper, FullCollections() as collections:
        for rnd in range(rounds):
            log(f"overhead: round {rnd + 1}/{rounds}")
            for w in workloads:
                if w.name not in built:
                    continue
                n = max(MIN_INVOCATIONS, round(invocations * w.weight))
                order = configs[rnd % len(configs) :] + configs[: rnd % len(configs)]
                for c in order:
                    cell = cells[(w.name, c.name)]
                    if cell.status != "ok":
                        continue
                    try:
                        _block(
                            cell,
                            built[w.name],
                            rnd,
                            n,
                            warmup,
                            sleeper,
                            collections,
                            clean[w.framework],
                        )
                    except Exception as exc:
                        cell.status, cell.reason = "error", f"{type(exc).__name__}: {exc}"
                        log(f"  {w.name} / {c.name}: {cell.reason}")

    # delivery: flush everything, let the sink settle, count
    for cell in cells.values():
        if cell.session is not None:
            try:
                cell.session.flush()
            except Exception as exc:
                log(f"  flush {cell.workload.name}/{cell.config.name}: {exc}")
    keys = [c.session.sink_key for c in cells.values() if c.session and c.session.sink_key]
    sink_stats = sink.settle(keys)

    for w in workloads:
        if w.name not in built:
            continue
        base = cells.get((w.name, "baseline"))
        floor = cells.get((w.name, "noop"))
        rows: dict[str, Any] = {}
        for c in configs:
            cell = cells[(w.name, c.name)]
            rows[c.name] = _summarize(cell, base, floor, units[w.name], sink_stats)
        _add_peer_ratios(rows)
        out["workloads"][w.name] = {
            "title": w.title,
            "framework": w.framework,
            "status": "ok",
            "units_per_request": units[w.name],
            "unit": "runs" if w.framework == "langchain" else "spans",
            "invocations_per_block": max(MIN_INVOCATIONS, round(invocations * w.weight)),
            "configs": rows,
        }
    out["sink"] = sink_stats
    for cell in cells.values():
        if cell.session is not None:
            try:
                cell.session.close()
            except Exception as exc:
                log(f"  close {cell.workload.name}/{cell.config.name}: {exc}")
    return out


def _paired(cell: Cell, other: Cell | None, attr: str) -> float | None:
    if other is None or other.status != "ok":
        return None
    mine: dict[int, float] = getattr(cell, attr)
    theirs: dict[int, float] = getattr(other, attr)
    diffs = [mine[r] - theirs[r] for r in mine if r in theirs]
    return statistics.median(diffs) if diffs else None


def _summarize(
    cell: Cell, base: Cell | None, floor: Cell | None, units: int, sink: dict[str, Any]
) -> dict[str, Any]:
    row: dict[str, Any] = {"title": cell.config.title, "kind": cell.config.kind}
    row["status"] = cell.status
    if cell.reason:
        row["reason"] = cell.reason
    if cell.status != "ok" or not cell.samples_ns:
        return row
    us = [t / 1000 for t in cell.samples_ns]
    row["wall_us"] = {
        "median": statistics.median(us),
        "p90": _percentile(us, 0.90),
        "p99": _percentile(us, 0.99),
        "round_medians": [round(cell.round_median_us[r], 1) for r in sorted(cell.round_median_us)],
    }
    row["cpu_us"] = {
        "mean": _cpu_mean(cell),
        "rounds": [round(cell.round_cpu_us[r], 1) for r in sorted(cell.round_cpu_us)],
    }
    row["flush_ms_median"] = statistics.median(cell.flush_ms)
    if base is not None and cell is not base and base.status == "ok" and base.samples_ns:
        row["overhead_us"] = row["wall_us"]["median"] - statistics.median(base.samples_ns) / 1000
        row["overhead_us_paired"] = _paired(cell, base, "round_median_us")
        row["cpu_overhead_us"] = row["cpu_us"]["mean"] - _cpu_mean(base)
    late = cell.sleeper_late_s
    row["sleeper"] = {
        "worst_ms": max(late) * 1000 if late else None,
        "p99_ms": _percentile(late, 0.99) * 1000 if late else None,
        "wakeups_per_s": len(late) / cell.sleeper_block_s if cell.sleeper_block_s else None,
        "full_collections": cell.full_collections,
        "worst_without_full_gc_ms": (
            max(cell.sleeper_late_no_gc_s) * 1000 if cell.sleeper_late_no_gc_s else None
        ),
    }
    session = cell.session
    if session is not None and session.unit:
        per_request = 1 if session.unit == "packets" else units
        expected = cell.requests * per_request
        delivered = session.delivered(sink)
        row["delivery"] = {
            "unit": session.unit,
            "requests": cell.requests,
            "expected": expected,
            "delivered": delivered,
            "ratio": (delivered / expected) if delivered is not None and expected else None,
        }
        row["details"] = session.details()
    floor_overhead = None
    if (
        floor is not None
        and floor is not cell
        and floor.status == "ok"
        and floor.samples_ns
        and base is not None
        and base.samples_ns
    ):
        floor_overhead = (
            statistics.median(floor.samples_ns) - statistics.median(base.samples_ns)
        ) / 1000
    overhead = row.get("overhead_us")
    base_us = statistics.median(base.samples_ns) / 1000 if base and base.samples_ns else 0.0
    if (
        overhead is not None
        and overhead > 0
        and floor_overhead is not None
        and floor_overhead >= max(MIN_FLOOR_US, base_us * 0.005)
    ):
        row["x_floor"] = overhead / floor_overhead
    return row


def _cpu_mean(cell: Cell) -> float:
    """CPU per request over every timed block: total CPU / total requests."""
    total_us = sum(cell.round_cpu_us[r] * cell.round_n[r] for r in cell.round_cpu_us)
    return total_us / max(1, sum(cell.round_n.values()))


def _add_peer_ratios(rows: dict[str, Any]) -> None:
    """For every aitel configuration: each peer's overhead divided by aitel's."""
    for row in rows.values():
        if row.get("kind") != "aitel" or row.get("status") != "ok":
            continue
        ratios: dict[str, dict[str, float | None]] = {}
        for peer, prow in rows.items():
            if prow.get("kind") != "peer" or prow.get("status") != "ok":
                continue
            ratios[peer] = {
                "wall": _ratio(prow.get("overhead_us"), row.get("overhead_us")),
                "cpu": _ratio(prow.get("cpu_overhead_us"), row.get("cpu_overhead_us")),
            }
        row["peer_over_aitel"] = ratios


def _ratio(peer: float | None, mine: float | None) -> float | None:
    if peer is None or mine is None or mine <= 0:
        return None
    return peer / mine
