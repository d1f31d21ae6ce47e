"""`aitel validate` reports bad lines by number and exits 1."""

from __future__ import annotations

import gzip

import orjson
import pytest

import aitel
from aitel.cli import main


def write_packets(tmp_path, n: int = 3):
    tracer = aitel.Tracer(aitel.JsonlExporter(tmp_path), settings=aitel.Settings())
    for i in range(n):
        with aitel.trace(f"req{i}", tracer=tracer):
            pass
    tracer.shutdown()
    return next(tmp_path.glob("*.jsonl"))


def test_valid_file_exits_zero(tmp_path, capsys) -> None:
    path = write_packets(tmp_path)
    assert main(["validate", str(path)]) == 0
    assert "ok: 3/3 packets valid" in capsys.readouterr().out


def test_bad_lines_are_reported_by_number(tmp_path, capsys) -> None:
    path = write_packets(tmp_path)
    lines = path.read_bytes().splitlines()
    broken = orjson.loads(lines[1])
    broken["status"] = "MAYBE"
    del broken["trace_id"]
    path.write_bytes(
        b"\n".join([lines[0], orjson.dumps(broken), b"{not json", b"\xff\xfe", lines[2]]) + b"\n"
    )
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert (f"{path}:2: " in out.out and "status" in out.out) or "trace_id" in out.out
    assert f"{path}:3: invalid JSON" in out.out
    assert f"{path}:4: invalid JSON" in out.out
    assert "INVALID: 2/5 packets valid" in out.err


def test_directories_and_gzip(tmp_path, capsys) -> None:
    path = write_packets(tmp_path)
    (tmp_path / "old.jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
    assert main(["validate", str(tmp_path)]) == 0
    assert "6/6" in capsys.readouterr().out


def test_missing_file_is_an_error(tmp_path) -> None:
    assert main(["validate", str(tmp_path / "nope.jsonl")]) == 1


def test_seed_minimal_packets_are_invalid(tmp_path, capsys) -> None:
    path = tmp_path / "seed.jsonl"
    path.write_text(
        '{"request_id": "1", "status": "SUCCESS", "payload": {"input": "short prompt"}}\n'
    )
    assert main(["validate", str(path)]) == 1
    assert f"{path}:1: " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", "x.jsonl", "--max-problems", "-1"], "--max-problems: must be at least 0"),
        (["analyze", "x.jsonl", "--threads", "-1"], "--threads: must be at least 1"),
        (["analyze", "x.jsonl", "--alpha", "5"], "--alpha: must be between 0 and 1"),
        (["analyze", "x.jsonl", "--min-lift", "nan"], "--min-lift: expected a finite number"),
        (["analyze", "x.jsonl", "--top", "many"], "--top: expected an integer, got 'many'"),
        (["generate", "--count", "5", "--out", "o", "--per-file", "0"], "must be at least 1"),
        (["collect", "--port", "70000"], "--port: a port is at most 65535"),
        (["collect", "--port", "-1"], "--port: must be at least 0"),
        (["collect", "--log-level", "bogus"], "--log-level: invalid choice: 'bogus'"),
        (["collect", "--queue", "0"], "--queue: must be at least 1"),
    ],
)
def test_bad_option_values_are_usage_errors(argv, message, capsys) -> None:
    """Out-of-range values get argparse's one-line error and exit code 2, no traceback."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_schema_output_is_an_error(tmp_path, capsys) -> None:
    assert main(["schema", "-o", str(tmp_path / "missing" / "schema.json")]) == 1
    assert "aitel schema: error: cannot write" in capsys.readouterr().err


def test_a_store_that_is_not_a_database_is_refused_before_serving(tmp_path, capsys) -> None:
    store = tmp_path / "not.db"
    store.write_bytes(b"not an SQLite file " * 10)
    assert main(["collect", "--port", "0", "--store", str(store)]) == 1
    err = capsys.readouterr().err
    assert f"cannot use {store} as the store: file is not a database" in err


def test_an_age_beyond_the_calendar_means_from_the_start(tmp_path) -> None:
    from aitel.analysis.filters import parse_time

    assert parse_time("99999999d").year == 1
