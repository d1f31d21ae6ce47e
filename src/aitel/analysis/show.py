"""Finding one packet and showing it as a step tree with a waterfall."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from aitel.analysis.errors import PacketNotFoundError
from aitel.analysis.loading import LineReader, SourceFile, discover, store_body
from aitel.analysis.render import fmt_ms, fmt_usd

__all__ = ["find_packet", "find_packets", "print_packet", "render_packet", "step_rows"]

_ID_PATTERNS = (
    re.compile(rb'"request_id"\s*:\s*"([^"\\]{1,200})"'),
    re.compile(rb'"packet_id"\s*:\s*"([^"\\]{1,200})"'),
)


def _packet_ids(packet: dict[str, Any]) -> set[str]:
    return {str(packet[k]) for k in ("request_id", "packet_id") if packet.get(k) is not None}


def _zstd_objects(src: SourceFile) -> Iterator[bytes]:
    """The JSON objects of a zstd JSONL file, read by DuckDB (as ``analyze`` reads them)."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            "SELECT json FROM read_json_objects(?, format = 'newline_delimited', "
            "compression = 'zstd', ignore_errors = true)",
            [str(src.path)],
        )
        while batch := rows.fetchmany(1024):
            for (text,) in batch:
                yield text.encode()
    except duckdb.Error:
        return
    finally:
        con.close()


def _bodies(src: SourceFile) -> Iterator[bytes]:
    if src.kind == "sqlite":
        try:
            db = sqlite3.connect(f"file:{src.path}?mode=ro", uri=True)
        except sqlite3.Error:
            return
        try:
            for (body,) in db.execute("SELECT body FROM packets"):
                data = store_body(body)
                if data is not None:
                    yield data
        except sqlite3.Error:
            return
        finally:
            db.close()
        return
    if src.kind == "zstd":
        yield from _zstd_objects(src)
        return
    try:
        yield from LineReader(src.path, src.kind)
    except OSError:
        return


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _scan(sources: list[SourceFile], wanted: set[str], thorough: bool) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    needles = {w: w.encode() for w in wanted}
    for src in sources:
        for line in _bodies(src):
            hit = False
            if thorough:
                hit = any(n in line for w, n in needles.items() if w not in found)
            else:
                for pattern in _ID_PATTERNS:
                    match = pattern.search(line)
                    if match and match.group(1).decode(errors="replace") in wanted:
                        hit = True
                        break
            if not hit:
                continue
            packet = _decode(line)
            if packet is None:
                continue
            for key in _packet_ids(packet) & wanted:
                found.setdefault(key, packet)
            if len(found) == len(wanted):
                return found
    return found


def find_packets(
    inputs: Iterable[str | Path] | list[SourceFile], request_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Packets whose ``request_id`` (or ``packet_id``) is one of ``request_ids``.

    Scans the inputs in order and stops once every id is found. Ids not found
    are missing from the result.
    """
    wanted = {str(r) for r in request_ids}
    if not wanted:
        return {}
    items = list(inputs)
    sources = (
        [s for s in items if isinstance(s, SourceFile)]
        if items and all(isinstance(s, SourceFile) for s in items)
        else discover(str(s) if not isinstance(s, SourceFile) else str(s.path) for s in items)
    )
    found = _scan(sources, wanted, thorough=False)
    missing = wanted - set(found)
    if missing:
        # The quick scan keys on the first id field of each line; look harder for the rest.
        found.update(_scan(sources, missing, thorough=True))
    return found


def find_packet(inputs: Iterable[str | Path], request_id: str) -> dict[str, Any]:
    """The packet of one request; raises :class:`PacketNotFoundError` when absent."""
    found = find_packets(inputs, [request_id])
    if request_id not in found:
        raise PacketNotFoundError(f"no packet with request id {request_id!r} in the inputs")
    return found[request_id]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def step_rows(packet: dict[str, Any]) -> list[dict[str, Any]]:
    """The packet's steps in tree order with depth, start offset and duration (ms).

    Each row: ``step`` (the step dict), ``depth``, ``offset_ms``, ``duration_ms``,
    ``failed``, ``origin`` (the step where the request's error arose).
    """
    steps = [s for s in packet.get("steps") or [] if isinstance(s, dict)]
    start = _time(packet.get("timestamp"))
    error = packet.get("error") if isinstance(packet.get("error"), dict) else {}
    origin_id = (error or {}).get("step_id")
    ids = {s.get("step_id") for s in steps}
    children: dict[Any, list[dict[str, Any]]] = {}
    for s in steps:
        parent = s.get("parent_id")
        children.setdefault(parent if parent in ids else None, []).append(s)
    if origin_id is None:
        failing = [s for s in steps if isinstance(s.get("error"), dict)]
        if failing:
            origin_id = failing[-1].get("step_id")
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()

    def visit(step: dict[str, Any], depth: int) -> None:
        if id(step) in seen:
            return
        seen.add(id(step))
        begin = _time(step.get("start_time"))
        offset = (begin - start).total_seconds() * 1000 if begin and start else None
        duration = step.get("duration_ms")
        rows.append(
            {
                "step": step,
                "depth": depth,
                "offset_ms": offset,
                "duration_ms": float(duration) if isinstance(duration, (int, float)) else None,
                "failed": str(step.get("status", "")).upper() == "FAILURE",
                "origin": origin_id is not None and step.get("step_id") == origin_id,
            }
        )
        kids = children.get(step.get("step_id"), []) if step.get("step_id") in ids else []
        for child in sorted(kids, key=lambda s: str(s.get("start_time") or "")):
            visit(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: str(s.get("start_time") or "")):
        visit(root, 0)
    for s in steps:  # cycles or dangling parents: show them anyway
        visit(s, 0)
    return rows


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _details(step: dict[str, Any]) -> Text:
    out = Text()
    llm = step.get("llm") if isinstance(step.get("llm"), dict) else None
    if llm:
        usage = llm.get("usage") if isinstance(llm.get("usage"), dict) else {}
        parts = [str(llm.get("model_name") or "?")]
        if usage:
            parts.append(
                f"{usage.get('prompt_tokens', '?')}+{usage.get('completion_tokens', '?')} tok"
            )
        if llm.get("cost_usd") is not None:
            parts.append(fmt_usd(float(llm["cost_usd"])))
        if llm.get("time_to_first_token_ms") is not None:
            parts.append(f"TTFT {fmt_ms(float(llm['time_to_first_token_ms']))}")
        if llm.get("finish_reason"):
            parts.append(f"finish={llm['finish_reason']}")
        out.append(" · ".join(parts))
        for call in llm.get("tool_calls") or []:
            if isinstance(call, dict):
                out.append(
                    f"\n→ calls {call.get('name')}({_short(call.get('arguments'), 100)})",
                    style="cyan",
                )
    tool = step.get("tool") if isinstance(step.get("tool"), dict) else None
    if tool or step.get("kind") == "tool":
        out.append(f"args: {_short(step.get('input'), 120)}", style="cyan")
        if step.get("output") is not None:
            out.append(f"\nresult: {_short(step.get('output'), 120)}", style="dim")
    retrieval = step.get("retrieval") if isinstance(step.get("retrieval"), dict) else None
    if retrieval:
        docs = [d for d in retrieval.get("documents") or [] if isinstance(d, dict)]
        if retrieval.get("query"):
            out.append(f"query: {_short(retrieval.get('query'), 100)}\n")
        if not docs:
            out.append("no documents", style="bold yellow")
        for doc in docs[:8]:
            score = doc.get("score")
            score_text = f"{score:.3f}" if isinstance(score, (int, float)) else "-"
            out.append(f"{score_text}  {doc.get('id') or '?'}", style="")
            if doc.get("source"):
                out.append(f"  ({doc['source']})", style="dim")
            out.append("\n")
        if len(docs) > 8:
            out.append(f"… {len(docs) - 8} more\n", style="dim")
        out.rstrip()
    error = step.get("error") if isinstance(step.get("error"), dict) else None
    if error:
        if out:
            out.append("\n")
        out.append(
            f"{error.get('type', 'Error')}: {_short(error.get('message'), 200)}", style="bold red"
        )
    return out


def _bar(
    offset: float | None, duration: float | None, total: float, width: int, style: str
) -> Text:
    if offset is None or duration is None or total <= 0:
        return Text("")
    start = max(0, min(width - 1, int(offset / total * width)))
    length = max(1, min(width - start, round(duration / total * width)))
    return Text(" " * start) + Text("█" * length, style=style)


def render_packet(packet: dict[str, Any], *, width: int = 32) -> RenderableType:
    """A packet as a header, a step tree with a waterfall, and the request's error."""
    perf = _dict(packet.get("performance"))
    meta = _dict(packet.get("pipeline_metadata"))
    status = str(packet.get("status") or "UNKNOWN").upper()
    failed = status in ("FAILURE", "FAILED", "ERROR")
    header = Text()
    header.append(
        f"request {packet.get('request_id') or packet.get('packet_id') or '?'}  ", style="bold"
    )
    header.append(status, style="bold red" if failed else "bold green")
    latency = perf.get("latency_ms")
    facts = [
        str(packet.get("timestamp") or ""),
        f"latency {fmt_ms(float(latency))}" if isinstance(latency, (int, float)) else "",
    ]
    for key, label in (("prompt_tokens", "prompt tok"), ("completion_tokens", "completion tok")):
        if perf.get(key) is not None:
            facts.append(f"{label} {perf[key]}")
    if perf.get("cost_usd") is not None:
        facts.append(f"cost {fmt_usd(float(perf['cost_usd']))}")
    if perf.get("retries"):
        facts.append(f"retries {perf['retries']}")
    header.append("\n" + "  ".join(f for f in facts if f), style="dim")
    context = [
        f"{k}={meta.get(k)}"
        for k in ("model_name", "ab_variant", "app_version", "environment", "user_id")
        if meta.get(k)
    ]
    if context:
        header.append("\n" + "  ".join(context), style="dim")

    parts: list[RenderableType] = [header]
    rows = step_rows(packet)
    if rows:
        total = max(
            [float(latency) if isinstance(latency, (int, float)) else 0.0]
            + [(r["offset_ms"] or 0) + (r["duration_ms"] or 0) for r in rows]
        )
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_lines=False)
        table.add_column("step")
        table.add_column("kind", style="dim")
        table.add_column("start", justify="right")
        table.add_column("duration", justify="right")
        table.add_column("waterfall", no_wrap=True)
        table.add_column("details", overflow="fold")
        for row in rows:
            step = row["step"]
            style = "bold red" if row["origin"] else ("red" if row["failed"] else "")
            mark = (
                "✗ "
                if row["failed"]
                else ("… " if str(step.get("status")).upper() == "INCOMPLETE" else "")
            )
            name = Text("  " * row["depth"] + mark + str(step.get("name") or "?"), style=style)
            table.add_row(
                name,
                str(step.get("kind") or "?"),
                fmt_ms(row["offset_ms"]),
                fmt_ms(row["duration_ms"]),
                _bar(
                    row["offset_ms"],
                    row["duration_ms"],
                    total,
                    width,
                    "red" if row["failed"] else "green",
                ),
                _details(step),
                style="on grey15" if row["origin"] else None,
            )
        parts.append(table)
    else:
        payload = packet.get("payload")
        if payload is not None:
            parts.append(Text(f"payload: {_short(payload, 600)}"))
    error = packet.get("error") if isinstance(packet.get("error"), dict) else None
    message = packet.get("error_message")
    if error or message:
        text = Text("error: ", style="bold red")
        if error:
            where = " / ".join(
                str(error.get(k)) for k in ("step_kind", "step_name") if error.get(k)
            )
            text.append(f"{error.get('type', 'Error')}: {error.get('message', '')}", style="red")
            if where:
                text.append(f"  (in {where})", style="dim")
        else:
            text.append(str(message), style="red")
        parts.append(text)
    return Group(*parts)


def print_packet(packet: dict[str, Any], console: Console | None = None) -> None:
    (console or Console()).print(render_packet(packet))
