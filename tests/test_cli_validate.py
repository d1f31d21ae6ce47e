"""`aitel validate` reports bad lines by number and exits 1."""

from __future__ import annotations

import gzip

import orjson

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
