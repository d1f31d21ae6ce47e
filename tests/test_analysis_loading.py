"""Loading packet files: formats, damaged input, older producers, filters."""

from __future__ import annotations

import gzip
import sqlite3
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from aitel.analysis.errors import InvalidFilterError, NoInputError
from aitel.analysis.filters import Filters, parse_metadata_pair, parse_time
from aitel.analysis.loading import discover, load
from aitel.analysis.synthetic import SyntheticOptions, generate_packets


@pytest.fixture(scope="module")
def packets() -> list[dict]:
    return list(generate_packets(60, seed=11, options=SyntheticOptions(failure_rate=0.2)))


def _lines(items: list[dict]) -> bytes:
    return b"".join(orjson.dumps(p) + b"\n" for p in items)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_plain_gzip_directory_and_glob(tmp_path, packets):
    _write(tmp_path / "a.jsonl", _lines(packets[:20]))
    _write(tmp_path / "b.jsonl.gz", gzip.compress(_lines(packets[20:40])))
    other = tmp_path / "other"
    other.mkdir()
    _write(other / "c.jsonl", _lines(packets[40:]))
    _write(tmp_path / "notes.txt", b"not packets")
    with load([tmp_path, str(other / "*.jsonl")]) as ds:
        assert ds.stats.packets == 60
        assert ds.stats.files == 3
        assert ds.stats.malformed_lines == 0
        assert ds.scalar("SELECT count(DISTINCT request_id) FROM packets") == 60


def test_missing_inputs_raise(tmp_path):
    with pytest.raises(NoInputError):
        discover([tmp_path / "nope.jsonl"])
    with pytest.raises(NoInputError):
        discover([str(tmp_path / "*.jsonl")])
    with pytest.raises(NoInputError):
        load([tmp_path])  # exists but holds no packet file


def test_malformed_lines_are_counted_and_skipped(tmp_path, packets):
    data = (
        _lines(packets[:5])
        + b'{"request_id": "broken", "status": \n'
        + b"\n   \n"
        + b"[1, 2, 3]\n"
        + b'"just a string"\n'
        + b'{"status": "\xff\xfe bad bytes"}\n'
        + _lines(packets[5:10])
        + b'{"request_id": "trunc'  # last line cut short by a crash
    )
    _write(tmp_path / "bad.jsonl", data)
    _write(tmp_path / "good.jsonl", _lines(packets[10:20]))
    with load([tmp_path]) as ds:
        assert ds.stats.packets == 20
        assert ds.stats.malformed_lines == 5
        assert any("bad.jsonl" in p.path for p in ds.stats.problems)


def test_truncated_and_corrupt_gzip(tmp_path, packets):
    whole = gzip.compress(_lines(packets))
    _write(tmp_path / "cut.jsonl.gz", whole[: len(whole) // 2])
    _write(tmp_path / "garbage.jsonl.gz", b"\x1f\x8b" + b"\x00" * 50)
    _write(tmp_path / "ok.jsonl", _lines(packets[:3]))
    with load([tmp_path]) as ds:
        assert 3 <= ds.stats.packets < 63
        problems = " ".join(p.problem for p in ds.stats.problems)
        assert "truncated" in problems


def test_empty_files_and_only_garbage(tmp_path, packets):
    _write(tmp_path / "empty.jsonl", b"")
    _write(tmp_path / "junk.jsonl", b"hello\nworld\n")
    with load([tmp_path]) as ds:
        assert ds.stats.packets == 0
        assert ds.stats.malformed_lines == 2


def test_minimal_and_seed_style_packets(tmp_path, packets):
    minimal = [
        {
            "request_id": "m1",
            "status": "FAILURE",
            "error_message": "TimeoutError: timeout after 30s on doc 123",
            "payload": {"input": "What is the refund policy?"},
        },
        {
            "request_id": "m2",
            "status": "failure",
            "error_message": "timeout after 45s on doc 9",
            "payload": {"prompt": "x" * 5000, "response": None},
        },
        {"request_id": "m3", "status": "success", "payload": {"input": {"question": "hi"}}},
        {"request_id": "m4", "error_message": "boom"},  # no status: failed
        {"packet_id": "p5"},  # no request id, no status
        {"foo": "bar"},  # not a packet at all
    ]
    _write(tmp_path / "seed.jsonl", _lines(minimal) + _lines(packets[:10]))
    with load([tmp_path]) as ds:
        assert ds.stats.packets == 15
        assert ds.stats.unrecognised == 1
        rows = {
            r[0]: r[1:]
            for r in ds.query(
                "SELECT coalesce(request_id, packet_id), status, error_type, error_message, "
                "prompt_chars FROM packets WHERE request_id LIKE 'm%' OR request_id IS NULL"
            )
        }
        assert rows["m1"] == ("FAILURE", "TimeoutError", "timeout after 30s on doc 123", 26)
        assert rows["m2"][0] == "FAILURE"
        assert rows["m2"][3] == 5000
        assert rows["m3"][0] == "SUCCESS"
        assert rows["m4"][0] == "FAILURE"
        assert rows["p5"][0] == "UNKNOWN"


def test_values_of_the_wrong_type_are_read_leniently(tmp_path, packets):
    odd = [dict(p) for p in packets[:5]]
    odd[0]["performance"] = {"latency_ms": "fast"}
    odd[1]["steps"] = "n/a"
    odd[2]["pipeline_metadata"] = ["not", "an", "object"]
    odd[3]["timestamp"] = "yesterday"
    _write(tmp_path / "odd.jsonl", _lines(odd))
    with load([tmp_path]) as ds:
        assert ds.stats.packets == 5
        assert ds.stats.lenient_files == 1
        # An unreadable latency falls back to end_time - timestamp.
        start = datetime.fromisoformat(odd[0]["timestamp"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(odd[0]["end_time"].replace("Z", "+00:00"))
        assert ds.scalar(
            "SELECT latency_ms FROM packets WHERE request_id = ?", [odd[0]["request_id"]]
        ) == pytest.approx((end - start).total_seconds() * 1000)
        assert (
            ds.scalar("SELECT len(steps) FROM packets WHERE request_id = ?", [odd[1]["request_id"]])
            == 0
        )
        assert ds.scalar("SELECT count(*) FROM packets WHERE ts IS NULL") == 1


def test_duplicates_are_dropped(tmp_path, packets):
    _write(tmp_path / "a.jsonl", _lines(packets[:10]))
    _write(tmp_path / "b.jsonl", _lines(packets[5:15]))
    with load([tmp_path]) as ds:
        assert ds.stats.packets == 15
        assert ds.stats.duplicates == 5


def test_collector_sqlite_store(tmp_path, packets):
    db = sqlite3.connect(tmp_path / "store.db")
    db.execute("CREATE TABLE packets(packet_id TEXT PRIMARY KEY, received_at TEXT, body BLOB)")
    rows = [(p["packet_id"], "2025-03-03T00:00:00Z", orjson.dumps(p)) for p in packets[:20]]
    pretty = packets[20]
    rows.append((pretty["packet_id"], "x", orjson.dumps(pretty, option=orjson.OPT_INDENT_2)))
    rows.append(("gz", "x", gzip.compress(orjson.dumps(packets[21]))))
    rows.append(("bad", "x", b"{not json"))
    rows.append(("null", "x", None))
    db.executemany("INSERT INTO packets VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()
    with load([tmp_path / "store.db"]) as ds:
        assert ds.stats.packets == 22
        assert ds.stats.malformed_lines == 2


def test_parse_time_relative_and_iso():
    now = datetime(2025, 3, 10, 12, 0, 0)
    assert parse_time("24h", now=now) == datetime(2025, 3, 9, 12, 0, 0)
    assert parse_time("30m", now=now) == datetime(2025, 3, 10, 11, 30, 0)
    assert parse_time("2w", now=now) == datetime(2025, 2, 24, 12, 0, 0)
    assert parse_time("2025-03-01T10:00:00Z") == datetime(2025, 3, 1, 10, 0, 0)
    assert parse_time("2025-03-01T12:00:00+02:00") == datetime(2025, 3, 1, 10, 0, 0)
    assert parse_time("2025-03-01") == datetime(2025, 3, 1)
    with pytest.raises(InvalidFilterError):
        parse_time("last tuesday")


def test_filter_values_are_checked():
    assert parse_metadata_pair("tier=free") == ("tier", "free")
    assert parse_metadata_pair("expr=a=b") == ("expr", "a=b")
    with pytest.raises(InvalidFilterError):
        parse_metadata_pair("novalue")
    with pytest.raises(InvalidFilterError):
        Filters.build(statuses=["maybe"])
    with pytest.raises(InvalidFilterError):
        Filters.build(since="2025-03-02", until="2025-03-01")


def test_filters_select_packets(tmp_path, packets):
    _write(tmp_path / "a.jsonl", _lines(packets))

    def count(**kwargs) -> int:
        with load([tmp_path], Filters.build(**kwargs)) as ds:
            return ds.stats.packets

    def expected(pred) -> int:
        return sum(1 for p in packets if pred(p))

    pm = "pipeline_metadata"
    assert count() == 60
    assert count(statuses=["failure"]) == expected(lambda p: p["status"] == "FAILURE")
    assert count(models=["gpt-4o"]) == expected(lambda p: p[pm]["model_name"] == "gpt-4o")
    assert count(models=["gpt-4o", "gpt-4o-mini"]) == expected(
        lambda p: p[pm]["model_name"] in ("gpt-4o", "gpt-4o-mini")
    )
    assert count(variants=["B"]) == expected(lambda p: p[pm]["ab_variant"] == "B")
    assert count(app_versions=["2.4.0"]) == expected(lambda p: p[pm]["app_version"] == "2.4.0")
    assert count(environments=["staging"]) == expected(lambda p: p[pm]["environment"] == "staging")
    assert count(tags=["billing"]) == expected(lambda p: "billing" in p[pm]["tags"])
    assert count(metadata=["user_tier=pro"]) == expected(
        lambda p: p[pm]["metadata"]["user_tier"] == "pro"
    )
    middle = sorted(p["timestamp"] for p in packets)[30]
    assert count(since=middle) == expected(lambda p: p["timestamp"] >= middle)
    assert count(until=middle) == expected(lambda p: p["timestamp"] < middle)
    assert count(since="1h") == 0  # the synthetic data lies in the past
    assert count(variants=["B"], statuses=["success"]) == expected(
        lambda p: p[pm]["ab_variant"] == "B" and p["status"] == "SUCCESS"
    )
    with load([tmp_path], Filters.build(variants=["nope"])) as ds:
        assert ds.stats.packets == 0
        assert ds.stats.filtered_out == 60
