"""The fact cache: a second analysis of unchanged files reads stored facts, with the same result."""

from __future__ import annotations

import gzip
import os
import sqlite3
from pathlib import Path

import orjson
import pytest

from aitel.analysis.analyze import analyze
from aitel.analysis.cache import FactCache, default_cache_dir
from aitel.analysis.filters import Filters
from aitel.analysis.loading import FACTS_VERSION, load
from aitel.analysis.synthetic import SyntheticOptions, generate_packets


@pytest.fixture(scope="module")
def packets() -> list[dict]:
    return list(generate_packets(300, seed=5, options=SyntheticOptions(failure_rate=0.2)))


def _lines(items: list[dict]) -> bytes:
    return b"".join(orjson.dumps(p) + b"\n" for p in items)


def _mixed_inputs(root: Path, packets: list[dict]) -> Path:
    """Plain, gzip, a damaged file, a lenient file and a collector store, with a duplicate."""
    data = root / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(_lines(packets[:100]))
    (data / "b.jsonl.gz").write_bytes(gzip.compress(_lines(packets[100:200])))
    (data / "bad.jsonl").write_bytes(
        _lines(packets[200:220]) + b'{"request_id": "cut", \n' + b"[1]\n" + _lines(packets[:1])
    )
    odd = dict(packets[220])
    odd["performance"] = {**odd["performance"], "latency_ms": "slow"}
    (data / "odd.jsonl").write_bytes(_lines([odd, *packets[221:240]]))
    db = sqlite3.connect(data / "store.db")
    db.execute("CREATE TABLE packets (packet_id TEXT PRIMARY KEY, received_at REAL, body BLOB)")
    db.executemany(
        "INSERT INTO packets VALUES (?, 0, ?)",
        [(p["packet_id"], orjson.dumps(p)) for p in packets[240:]] + [("x", b"\xff not json")],
    )
    db.commit()
    db.close()
    return data


def _rounded(value: object) -> object:
    """Floats to 9 significant digits: sums may be added up in another order."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _report_without_time(ds) -> dict:
    report = analyze(ds).model_dump(mode="json")
    report.pop("generated_at")
    return _rounded(report)


def test_second_analysis_reads_the_cache_and_agrees(tmp_path, packets):
    data = _mixed_inputs(tmp_path, packets)
    cache = tmp_path / "cache"
    with load([data], cache=cache) as cold:
        cold_stats = cold.stats
        cold_report = _report_without_time(cold)
    assert cold_stats.cached_files == 0
    assert len(list(cache.glob("*.duckdb"))) == 5
    with load([data], cache=cache) as warm:
        warm_stats = warm.stats
        warm_report = _report_without_time(warm)
    with load([data], cache=False) as uncached:
        plain_report = _report_without_time(uncached)

    assert warm_stats.cached_files == 5
    assert cold_report == warm_report == plain_report
    assert warm_stats.packets == cold_stats.packets == 300
    assert warm_stats.duplicates == 1
    assert warm_stats.malformed_lines == cold_stats.malformed_lines == 3
    assert warm_stats.lenient_files == cold_stats.lenient_files == 1
    assert sorted((p.path, p.problem) for p in warm_stats.problems) == sorted(
        (p.path, p.problem) for p in cold_stats.problems
    )


def test_a_changed_file_is_parsed_again(tmp_path, packets):
    data = tmp_path / "data"
    data.mkdir()
    live = data / "live.jsonl"
    live.write_bytes(_lines(packets[:50]))
    (data / "rotated.jsonl").write_bytes(_lines(packets[50:100]))
    cache = tmp_path / "cache"
    with load([data], cache=cache) as ds:
        assert ds.stats.packets == 100
    with live.open("ab") as fh:
        fh.write(_lines(packets[100:130]))
    with load([data], cache=cache) as ds:
        assert ds.stats.cached_files == 1  # only the rotated file
        assert ds.stats.packets == 130
    # One entry per source file, however often it changed.
    assert len(list(cache.glob("*.duckdb"))) == 2


def test_filters_apply_to_cached_facts(tmp_path, packets):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(_lines(packets))
    cache = tmp_path / "cache"
    failing = sum(p["status"] == "FAILURE" for p in packets)
    for _ in range(2):
        with load([data], Filters(statuses=["FAILURE"]), cache=cache) as ds:
            assert ds.stats.packets == failing
            assert ds.stats.filtered_out == len(packets) - failing
    with load([data], cache=cache) as ds:
        assert ds.stats.cached_files == 1
        assert ds.stats.packets == len(packets)


def test_a_damaged_entry_falls_back_to_parsing(tmp_path, packets):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(_lines(packets[:40]))
    cache = tmp_path / "cache"
    with load([data], cache=cache):
        pass
    (entry,) = cache.glob("*.duckdb")
    entry.write_bytes(b"not a database" * 100)
    with load([data], cache=cache) as ds:
        assert ds.stats.cached_files == 0
        assert ds.stats.packets == 40
    with load([data], cache=cache) as ds:  # rewritten by the fallback
        assert ds.stats.cached_files == 1
        assert ds.stats.packets == 40


def test_an_unwritable_cache_is_no_obstacle(tmp_path, packets):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(_lines(packets[:40]))
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache directory should be")
    with load([data], cache=blocked / "cache") as ds:
        assert ds.stats.packets == 40
        assert ds.stats.cached_files == 0


def test_cache_off_writes_nothing(tmp_path, packets, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_bytes(_lines(packets[:10]))
    cache = tmp_path / "cache"
    monkeypatch.setenv("AITEL_ANALYSIS_CACHE", "off")
    assert default_cache_dir() is None
    with load([data]) as ds:
        assert ds.stats.packets == 10
    monkeypatch.setenv("AITEL_ANALYSIS_CACHE", str(cache))
    assert default_cache_dir() == cache
    with load([data], cache=False) as ds:
        assert ds.stats.packets == 10
    assert not cache.exists()
    with load([data]) as ds:
        assert ds.stats.packets == 10
    assert [p.suffix for p in cache.iterdir()].count(".duckdb") == 1


def test_default_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("AITEL_ANALYSIS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "aitel" / "analysis"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "aitel" / "analysis"


def test_prune_drops_entries_of_gone_and_unused_files(tmp_path, packets):
    data = tmp_path / "data"
    data.mkdir()
    kept, gone, idle = (data / f"{n}.jsonl" for n in ("kept", "gone", "idle"))
    for i, path in enumerate((kept, gone, idle)):
        path.write_bytes(_lines(packets[i * 10 : i * 10 + 10]))
    cache_dir = tmp_path / "cache"
    with load([data], cache=cache_dir):
        pass
    assert len(list(cache_dir.glob("*.duckdb"))) == 3
    leftover = cache_dir / "dead.12345.tmp.duckdb"
    leftover.write_bytes(b"half written")
    old = os.stat(leftover).st_mtime - 7200
    os.utime(leftover, (old, old))

    gone.unlink()
    cache = FactCache(cache_dir, FACTS_VERSION)
    hit = cache.lookup(kept, kept.stat())  # a use refreshes the entry
    assert hit is not None
    month_later = os.stat(hit[0]).st_mtime + 31 * 24 * 3600
    for meta in cache_dir.glob("*.json"):
        if meta != hit[0].with_suffix(".json"):
            os.utime(meta, (month_later - 40 * 24 * 3600,) * 2)
    os.utime(hit[0].with_suffix(".json"), (month_later - 3600,) * 2)

    assert cache.prune(now=month_later) == 5  # gone and idle: record and facts each; leftover
    assert not leftover.exists()
    assert cache.lookup(kept, kept.stat()) is not None
    assert cache.lookup(idle, idle.stat()) is None
    with load([data], cache=cache_dir) as ds:
        assert ds.stats.cached_files == 1
        assert ds.stats.packets == 20
