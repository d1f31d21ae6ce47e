"""Failures: the most frequent errors, grouped by their normalised message."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aitel.analysis.loading import Dataset
from aitel.analysis.model import ErrorGroup, ErrorLocation, Failures
from aitel.analysis.normalize import MAX_MESSAGE_CHARS, normalize_message
from aitel.analysis.overview import iso

__all__ = ["failures"]

_EXAMPLES = 3

# Digits are zeroed in SQL so that messages differing only in numbers arrive as
# one row; normalize_message gives the same result either way.
_SQL = f"""
SELECT
    error_type,
    regexp_replace(left(coalesce(error_message, ''), {MAX_MESSAGE_CHARS}), '[0-9]', '0', 'g')
        AS shape,
    error_step_kind,
    error_step_name,
    count(*) AS n,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    min_by({{'ts': ts, 'id': coalesce(request_id, packet_id)}},
           coalesce(ts, TIMESTAMP '9999-12-31'), {_EXAMPLES}) AS examples,
    min_by(error_message, {{'ts': coalesce(ts, TIMESTAMP '9999-12-31'),
                            'id': coalesce(request_id, packet_id, '')}}) AS example
FROM packets
WHERE status = 'FAILURE'
GROUP BY ALL
"""


@dataclass
class _Group:
    error_type: str | None
    pattern: str
    example: str = ""
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    examples: list[tuple[datetime, str]] = field(default_factory=list)
    locations: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def failures(ds: Dataset, *, top: int = 20) -> Failures:
    """The ``top`` error groups by count, with where and when each error happened."""
    groups: dict[tuple[str | None, str], _Group] = {}
    total = 0
    far = datetime.max
    # Rows in a fixed order, so each group's example is the same from run to run.
    rows = sorted(
        ds.con.execute(_SQL).fetchall(),
        key=lambda r: (r[5] is None, r[5] or far, str(r[8] or "")),
    )
    for row in rows:
        etype, shape, kind, name, n, first, last, examples, example = row
        pattern = normalize_message(shape) or "(no message)"
        key = (etype, pattern)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(etype, pattern, example=str(example or ""))
        count = int(n)
        total += count
        group.count += count
        group.first = _earliest(group.first, first)
        group.last = _latest(group.last, last)
        group.locations[(kind, name)] += count
        for item in examples or []:
            if item["id"] is not None:
                group.examples.append((item["ts"] or far, str(item["id"])))
    ordered = sorted(groups.values(), key=lambda g: (-g.count, g.pattern))
    out: list[ErrorGroup] = []
    for group in ordered[:top]:
        group.examples.sort()
        out.append(
            ErrorGroup(
                error_type=group.error_type,
                pattern=group.pattern,
                example_message=_first_line(group.example),
                count=group.count,
                share_of_failures=group.count / total if total else 0.0,
                first_seen=iso(group.first),
                last_seen=iso(group.last),
                example_request_ids=[rid for _, rid in group.examples[:_EXAMPLES]],
                locations=[
                    ErrorLocation(step_kind=k, step_name=n, count=c)
                    for (k, n), c in group.locations.most_common(5)
                ],
            )
        )
    return Failures(failures=total, groups_total=len(groups), groups=out)


def _first_line(message: str, limit: int = 500) -> str:
    line = message.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failing_request_ids(ds: Dataset, limit: int) -> list[dict[str, Any]]:
    """Recent failing requests (id, error type, time), for picking examples to inspect."""
    rows = ds.con.execute(
        "SELECT coalesce(request_id, packet_id), error_type, error_message, ts FROM packets "
        "WHERE status = 'FAILURE' ORDER BY ts DESC NULLS LAST LIMIT ?",
        [limit],
    ).fetchall()
    return [
        {"request_id": r[0], "error_type": r[1], "error_message": r[2], "time": iso(r[3])}
        for r in rows
    ]
