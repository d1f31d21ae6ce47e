"""Which packets an analysis looks at.

A :class:`Filters` value turns into one SQL predicate over the loaded
``packets`` table. Several values for the same field match any of them
(``--model a --model b``); different fields, tags and metadata pairs must all
match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aitel.analysis.errors import InvalidFilterError

__all__ = ["Filters", "parse_metadata_pair", "parse_time"]

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "w": 604800,
}
_STATUSES = {
    "success": "SUCCESS",
    "ok": "SUCCESS",
    "failure": "FAILURE",
    "failed": "FAILURE",
    "error": "FAILURE",
    "unknown": "UNKNOWN",
}


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """A point in time from ISO-8601 or a relative age like ``24h``, ``30m``, ``7d``, ``2w``.

    Relative ages count back from ``now`` (default: the current UTC time). A
    time without a zone is taken as UTC. The result is a naive UTC datetime.
    """
    text = value.strip()
    match = _RELATIVE.match(text)
    if match:
        amount = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        base = now or datetime.now(timezone.utc)
        if base.tzinfo is not None:
            base = base.astimezone(timezone.utc).replace(tzinfo=None)
        try:
            return base - timedelta(seconds=amount)
        except OverflowError:  # further back than datetime goes: from the start of time
            return datetime.min
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise InvalidFilterError(
            f"cannot read time {value!r}: use ISO-8601 (2025-03-01T12:00:00Z) "
            "or an age like 30m, 24h, 7d, 2w"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def parse_metadata_pair(value: str) -> tuple[str, str]:
    """Split ``key=value``; the key must not be empty."""
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise InvalidFilterError(f"metadata filter {value!r} is not key=value")
    return key.strip(), val


def _normalise_status(value: str) -> str:
    status = _STATUSES.get(value.strip().lower())
    if status is None:
        raise InvalidFilterError(f"unknown status {value!r}: use success or failure")
    return status


@dataclass(frozen=True, slots=True)
class Filters:
    """Selection of packets. Empty fields select everything."""

    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    app_versions: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def build(
        cls,
        *,
        since: str | datetime | None = None,
        until: str | datetime | None = None,
        statuses: Iterable[str] = (),
        models: Iterable[str] = (),
        variants: Iterable[str] = (),
        app_versions: Iterable[str] = (),
        environments: Iterable[str] = (),
        tags: Iterable[str] = (),
        metadata: Iterable[str | tuple[str, str]] = (),
        now: datetime | None = None,
    ) -> Filters:
        """Filters from user-facing values; raises :class:`InvalidFilterError` on bad input."""

        def when(value: str | datetime | None) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, datetime):
                if value.tzinfo is not None:
                    return value.astimezone(timezone.utc).replace(tzinfo=None)
                return value
            return parse_time(value, now=now)

        pairs = tuple(
            parse_metadata_pair(m) if isinstance(m, str) else (m[0], m[1]) for m in metadata
        )
        result = cls(
            since=when(since),
            until=when(until),
            statuses=tuple(_normalise_status(s) for s in statuses),
            models=tuple(models),
            variants=tuple(variants),
            app_versions=tuple(app_versions),
            environments=tuple(environments),
            tags=tuple(tags),
            metadata=pairs,
        )
        if result.since and result.until and result.since > result.until:
            raise InvalidFilterError("--since is later than --until")
        return result

    @property
    def active(self) -> bool:
        return any(
            (
                self.since,
                self.until,
                self.statuses,
                self.models,
                self.variants,
                self.app_versions,
                self.environments,
                self.tags,
                self.metadata,
            )
        )

    def describe(self) -> dict[str, Any]:
        """The filters as plain JSON-able values (only those set)."""
        out: dict[str, Any] = {}
        if self.since:
            out["since"] = self.since.isoformat() + "Z"
        if self.until:
            out["until"] = self.until.isoformat() + "Z"
        for name in ("statuses", "models", "variants", "app_versions", "environments", "tags"):
            values: Sequence[str] = getattr(self, name)
            if values:
                out[name] = list(values)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    def sql(self) -> tuple[str, list[Any]]:
        """A predicate over the ``packets`` table and its parameters (``TRUE`` when empty)."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("ts < ?")
            params.append(self.until)
        for column, values in (
            ("status", self.statuses),
            ("model", self.models),
            ("variant", self.variants),
            ("app_version", self.app_versions),
            ("environment", self.environments),
        ):
            if values:
                marks = ", ".join("?" for _ in values)
                clauses.append(f"{column} IN ({marks})")
                params.extend(values)
        for tag in self.tags:
            clauses.append("list_contains(tags, ?)")
            params.append(tag)
        for key, value in self.metadata:
            clauses.append("element_at(metadata, ?)[1] = ?")
            params.extend([key, value])
        return (" AND ".join(clauses) if clauses else "TRUE"), params
