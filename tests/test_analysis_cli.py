"""The analyze, report, show and generate commands and their exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from aitel.analysis.cli import EXIT_FAILED, EXIT_NO_DATA, EXIT_OK, EXIT_USAGE, main, register


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli")
    assert (
        main(["generate", "--count", "800", "--out", str(out), "--seed", "4", "--per-file", "400"])
        == EXIT_OK
    )
    return out


def test_register_adds_subcommands():
    parser = argparse.ArgumentParser(prog="aitel")
    register(parser.add_subparsers(dest="command"))
    for argv in (
        ["analyze", "x"],
        ["report", "x", "-o", "r.html"],
        ["show", "id", "x"],
        ["generate", "--count", "1", "--out", "d"],
    ):
        args = parser.parse_args(argv)
        assert callable(args.func)


def test_generate_writes_files(data):
    files = sorted(data.glob("*.jsonl"))
    assert len(files) == 2
    assert sum(len(f.read_text().splitlines()) for f in files) == 800


def test_generate_without_causes_and_gzip(tmp_path):
    assert (
        main(["generate", "--count", "10", "--out", str(tmp_path), "--no-causes", "--gzip"])
        == EXIT_OK
    )
    assert [p.name for p in tmp_path.iterdir()] == ["packets-00000.jsonl.gz"]
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--count", "-1", "--out", str(tmp_path)])
    assert exit_.value.code == EXIT_USAGE


def test_analyze_prints_a_report(data, capsys):
    assert main(["analyze", str(data)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Overview" in out
    assert "Top errors" in out


def test_analyze_json(data, capsys, tmp_path):
    assert main(["analyze", str(data), "--json", "--variant", "B"]) == EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert document["filters"] == {"variants": ["B"]}
    assert {v["key"] for v in document["overview"]["by_variant"]} == {"B"}
    target = tmp_path / "out.json"
    assert main(["analyze", str(data), "-o", str(target)]) == EXIT_OK
    assert json.loads(target.read_text())["input"]["packets"] == 800


def test_analyze_exit_codes(data, tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing.jsonl")]) == EXIT_USAGE
    assert "no such file" in capsys.readouterr().err
    assert main(["analyze", str(data), "--since", "last tuesday"]) == EXIT_USAGE
    assert main(["analyze", str(data), "--meta", "novalue"]) == EXIT_USAGE
    assert main(["analyze", str(data), "--model", "no-such-model"]) == EXIT_NO_DATA
    assert "matches the filters" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["analyze", str(empty)]) == EXIT_NO_DATA
    with pytest.raises(SystemExit) as exc:
        main(["analyze"])
    assert exc.value.code == EXIT_USAGE


def test_show_exit_codes(data, capsys):
    line = (sorted(data.glob("*.jsonl"))[0]).read_text().splitlines()[5]
    rid = json.loads(line)["request_id"]
    assert main(["show", rid, str(data)]) == EXIT_OK
    assert rid in capsys.readouterr().out
    assert main(["show", rid, str(data), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["request_id"] == rid
    assert main(["show", "nope", str(data)]) == EXIT_FAILED
    assert "no packet" in capsys.readouterr().err


def test_report_writes_html(data, tmp_path, capsys):
    target = tmp_path / "sub" / "report.html"
    assert main(["report", str(data), "-o", str(target)]) == EXIT_OK
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Plotly" in page
    assert "wrote" in capsys.readouterr().err
    assert (
        main(
            [
                "report",
                str(data),
                "-o",
                str(target),
                "--status",
                "failure",
                "--environment",
                "nowhere",
            ]
        )
        == EXIT_NO_DATA
    )
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["report", str(data), "-o", str(blocker / "r.html")]) == EXIT_FAILED


def _as_zstd(plain: Path, target: Path) -> Path:
    """``plain`` JSONL compressed with zstd (written by DuckDB: no zstd module needed)."""
    import duckdb

    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT json FROM read_json_objects(?, format = 'newline_delimited')) "
            f"TO '{target}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', "
            "DELIMITER '\x01', COMPRESSION zstd)",
            [str(plain)],
        )
    return target


def test_show_and_validate_read_zstd_files(data, tmp_path, capsys):
    """show finds a packet in a .jsonl.zst file; validate says it cannot read zstd."""
    from aitel.cli import main as aitel_main

    plain = sorted(data.glob("*.jsonl"))[0]
    rid = json.loads(plain.read_text().splitlines()[7])["request_id"]
    packed = _as_zstd(plain, tmp_path / "packets.jsonl.zst")
    assert main(["show", rid, "--json", str(packed)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["request_id"] == rid
    assert aitel_main(["validate", str(packed)]) == 1
    assert "cannot read: zstd-compressed: decompress it" in capsys.readouterr().out


def test_validate_reads_a_file_by_its_bytes_not_its_name(data, tmp_path, capsys):
    from aitel.cli import main as aitel_main

    plain = sorted(data.glob("*.jsonl"))[0]
    misnamed = tmp_path / "not-really.jsonl.gz"
    misnamed.write_bytes(plain.read_bytes())
    assert aitel_main(["validate", str(misnamed)]) == 0
    assert "ok: 400/400 packets valid" in capsys.readouterr().out


def test_no_packets_names_what_was_wrong_with_the_inputs(tmp_path, capsys):
    broken = tmp_path / "store.jsonl"
    broken.write_bytes(b"\x00\x01 not a packet\n" * 3)
    assert main(["analyze", str(broken)]) == EXIT_NO_DATA
    err = capsys.readouterr().err
    assert "no packets found in the inputs" in err and f"{broken}: 3 malformed line(s)" in err
