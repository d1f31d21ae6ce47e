"""Check JSONL packet files against the schema, line by line."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from pydantic import ValidationError

from ._filekind import sniff
from .schema import ContextPacket


@dataclass(frozen=True, slots=True)
class LineProblem:
    path: str
    line: int
    reason: str


@dataclass(slots=True)
class ValidationReport:
    files: int = 0
    packets: int = 0
    valid: int = 0
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _lines(path: Path) -> Iterator[bytes]:
    """The file's lines, gzip or not whatever its name says; raises OSError for zstd."""
    kind = sniff(path)
    if kind == "zstd":
        raise OSError("zstd-compressed: decompress it (zstd -d) or use aitel analyze")
    opener = gzip.open if kind == "gzip" else open
    with opener(path, "rb") as handle:
        yield from handle


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "packet"
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def validate_files(paths: list[Path], report: ValidationReport | None = None) -> ValidationReport:
    """Validate every non-blank line of every file; problems carry 1-based line numbers."""
    report = report or ValidationReport()
    for path in paths:
        report.files += 1
        try:
            for number, raw in enumerate(_lines(path), start=1):
                if not raw.strip():
                    continue
                report.packets += 1
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    report.problems.append(LineProblem(str(path), number, f"invalid JSON: {exc}"))
                    continue
                try:
                    ContextPacket.model_validate(data)
                except ValidationError as exc:
                    report.problems.append(LineProblem(str(path), number, _reason(exc)))
                    continue
                report.valid += 1
        except (OSError, EOFError) as exc:
            report.problems.append(LineProblem(str(path), 0, f"cannot read: {exc}"))
    return report
