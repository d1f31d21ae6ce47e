"""The default destination: JSONL files that rotate and can be read while written."""

from __future__ import annotations

import os

import orjson

import aitel
from aitel import EncodedPacket, JsonlExporter, _fileio
from aitel.exporters.jsonl import default_directory


def encoded(i: int, size: int = 10) -> EncodedPacket:
    data = orjson.dumps({"packet_id": str(i), "blob": "x" * size})
    return EncodedPacket(str(i), data)


def test_one_packet_per_line(tmp_path) -> None:
    exporter = JsonlExporter(tmp_path)
    assert exporter.export([encoded(1), encoded(2)]).success
    lines = exporter.path.read_bytes().splitlines()
    assert [orjson.loads(line)["packet_id"] for line in lines] == ["1", "2"]
    assert str(os.getpid()) in exporter.path.name


def test_rotates_by_size(tmp_path) -> None:
    exporter = JsonlExporter(tmp_path, max_file_bytes=5_000)
    for i in range(20):
        exporter.export([encoded(i, 1_000)])
    files = exporter.files()
    assert len(files) >= 4
    assert all(f.stat().st_size <= 5_000 for f in files)
    ids = [orjson.loads(line)["packet_id"] for f in files for line in f.read_bytes().splitlines()]
    assert ids == [str(i) for i in range(20)]


def test_reader_sees_only_whole_lines_while_written(tmp_path) -> None:
    exporter = JsonlExporter(tmp_path)
    exporter.export([encoded(0)])
    with open(exporter.path, "rb") as reader:
        for i in range(1, 200):
            exporter.export([encoded(i, 5_000)])
            chunk = reader.read()
            assert chunk.endswith(b"\n")
            for line in chunk.splitlines():
                orjson.loads(line)


def test_unwritable_directory_is_a_transient_failure_not_an_exception(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    result = JsonlExporter(blocker / "sub").export([encoded(1)])
    assert result.exported == 0 and len(result.retry) == 1 and "Error" in result.error


def test_directory_from_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AITEL_DIR", str(tmp_path / "env-dir"))
    assert default_directory() == tmp_path / "env-dir"
    tracer = aitel.Tracer(settings=aitel.Settings.from_env())
    with aitel.trace("x", tracer=tracer):
        pass
    tracer.shutdown()
    assert len(list((tmp_path / "env-dir").glob("*.jsonl"))) == 1


def test_default_directory_is_local(monkeypatch) -> None:
    monkeypatch.delenv("AITEL_DIR", raising=False)
    assert str(default_directory()) == "aitel-telemetry"


def test_a_batch_of_more_lines_than_one_writev_takes_is_written_whole_and_in_order(
    tmp_path,
) -> None:
    exporter = JsonlExporter(tmp_path)
    batch = [encoded(i, i % 7) for i in range(1_500)]  # more than IOV_MAX / 2 lines
    assert exporter.export(batch).exported == 1_500
    data = exporter.path.read_bytes()
    assert data == b"".join(p.data + b"\n" for p in batch)
    assert exporter._size == len(data)


def test_a_short_writev_is_finished(tmp_path, monkeypatch) -> None:
    """The kernel may write part of a vector (a full disk, a signal); the rest follows."""
    real_writev = os.writev
    calls = []

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        calls.append(len(buffers))
        return real_writev(fd, buffers[: len(buffers) // 2 + 1])  # ends inside a line

    monkeypatch.setattr(_fileio.os, "writev", short_writev)
    monkeypatch.setattr(_fileio, "_IOV_MAX", 64)  # 32 lines a call
    exporter = JsonlExporter(tmp_path)
    batch = [encoded(i, 100) for i in range(600)]
    assert exporter.export(batch).exported == 600
    assert calls == [64] * 18 + [48]
    assert exporter.path.read_bytes() == b"".join(p.data + b"\n" for p in batch)
