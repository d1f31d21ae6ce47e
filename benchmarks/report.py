"""Plain-text tables for the results (the JSON file has every number)."""

from __future__ import annotations

from typing import Any


def _num(value: Any, fmt: str = "{:,.0f}", none: str = "-") -> str:
    if value is None:
        return none
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def _signed(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:+,.0f}"


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}x"


def table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A fixed-width table; ``align`` has one letter per column (l or r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        parts = [
            str(cell).ljust(widths[i]) if align[i] == "l" else str(cell).rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def _delivery(row: dict[str, Any]) -> str:
    d = row.get("delivery")
    if not d:
        return "-"
    delivered, expected = d.get("delivered"), d.get("expected")
    if delivered is None:
        return "?"
    pct = f" ({delivered / expected:.0%})" if expected else ""
    return f"{delivered:,}/{expected:,} {d['unit']}{pct}"


def overhead_tables(result: dict[str, Any]) -> str:
    blocks = []
    for name, w in result["workloads"].items():
        if w.get("status") != "ok":
            blocks.append(f"== {name}: {w.get('title', '')} ==\n  n/a: {w.get('reason')}")
            continue
        head = (
            f"== {name}: {w['title']} ({w['framework']}, {w['units_per_request']} "
            f"{w['unit']}/request, {w['invocations_per_block']} requests per block) =="
        )
        rows = []
        for cname, row in w["configs"].items():
            label = f"{cname}"
            if row.get("status") != "ok":
                rows.append([label, str(row.get("status")), *[""] * 8, row.get("reason", "")])
                continue
            sl = row.get("sleeper", {})
            rows.append(
                [
                    label,
                    _num(row["wall_us"]["median"]),
                    _signed(row.get("overhead_us")),
                    _ratio(row.get("x_floor")),
                    _num(row["cpu_us"]["mean"]),
                    _signed(row.get("cpu_overhead_us")),
                    _num(row.get("flush_ms_median"), "{:,.1f}"),
                    _num(sl.get("worst_ms"), "{:,.1f}"),
                    _num(sl.get("worst_without_full_gc_ms"), "{:,.1f}"),
                    _num(sl.get("full_collections"), "{:,}"),
                    _delivery(row),
                ]
            )
        headers = [
            "config",
            "wall us",
            "+wall us",
            "x no-op",
            "CPU us",
            "+CPU us",
            "flush ms",
            "sleeper worst ms",
            "w/o full GC",
            "full GCs",
            "delivered",
        ]
        blocks.append(head + "\n" + table(headers, rows, "lrrrrrrrrrl"))
    blocks.append(ratio_table(result))
    return "\n\n".join(b for b in blocks if b)


def ratio_table(result: dict[str, Any]) -> str:
    """Each peer's overhead divided by aitel's (wall / CPU), per workload."""
    peers: list[str] = []
    aitels: list[str] = []
    for w in result["workloads"].values():
        for cname, row in w.get("configs", {}).items():
            if row.get("kind") == "peer" and cname not in peers:
                peers.append(cname)
            if row.get("kind") == "aitel" and cname not in aitels:
                aitels.append(cname)
    if not peers or not aitels:
        return ""
    main = "aitel-jsonl" if "aitel-jsonl" in aitels else aitels[0]
    rows = []
    for name, w in result["workloads"].items():
        if w.get("status") != "ok":
            continue
        row = w["configs"].get(main, {})
        if row.get("status") != "ok":
            continue
        cells = [name, f"{_signed(row.get('overhead_us'))} / {_signed(row.get('cpu_overhead_us'))}"]
        for peer in peers:
            ratio = row.get("peer_over_aitel", {}).get(peer)
            if not ratio:
                cells.append("n/a")
            else:
                cells.append(f"{_ratio(ratio['wall'])} / {_ratio(ratio['cpu'])}")
        rows.append(cells)
    headers = ["workload", f"{main} +us wall/CPU", *[f"{p} / aitel" for p in peers]]
    return f"== peer overhead / {main} overhead (wall / CPU; >1: the peer costs more) ==\n" + table(
        headers, rows
    )


def hotpath_tables(result: dict[str, Any]) -> str:
    floor = result["timer_floor"]
    out = [
        "== aitel hot path: time inside each callback on the caller's thread (us) ==",
        f"timer floor (empty function, same wrapper): p50 {floor['p50_us']:.2f}, "
        f"p99 {floor['p99_us']:.2f}",
    ]
    for name, w in result["workloads"].items():
        if w.get("status") != "ok":
            out.append(f"-- {name}: {w.get('status')}: {w.get('reason')}")
            continue
        rows = [
            [cb, _num(s["count"]), f"{s['p50_us']:.1f}", f"{s['p99_us']:.1f}", f"{s['max_us']:.0f}"]
            for cb, s in w["callbacks"].items()
        ]
        out.append(
            f"-- {name}: {w['calls_per_request']:.0f} callbacks per request; per request "
            f"{w['per_request_p50_us']:.0f} us typical (sum of p50s), "
            f"{w['per_request_us']:.0f} us mean; "
            f"{w['exported']:,}/{w['requests_total']:,} packets exported"
        )
        out.append(table(["callback", "calls", "p50", "p99", "max"], rows))
    return "\n".join(out)


def pipeline_tables(result: dict[str, Any]) -> str:
    out = []
    for mode in ("throughput", "burst"):
        rows = []
        for name, r in result.get(mode, {}).items():
            if r.get("status") in {"n/a", "error"}:
                rows.append([name, str(r["status"]), *[""] * 6, str(r.get("reason"))])
                continue
            size = r.get("packet_bytes") or r.get("span_bytes")
            arrived = (
                r.get("stored_at_collector")
                if "stored_at_collector" in r
                else r.get("packets_at_sink", r.get("spans_at_sink"))
            )
            rows.append(
                [
                    name,
                    _num(size),
                    _num(r.get("queue")) if mode == "burst" else "",
                    _num(r.get("packets_per_s")),
                    f"{r['submit_us']:.2f}",
                    _num(r.get("cpu_us_per_packet"), "{:,.1f}"),
                    f"{_num(r.get('exported'))}/{_num(r.get('submitted'))}",
                    _num(r.get("dropped")),
                    _num(arrived),
                ]
            )
        if not rows:
            continue
        title = (
            "== export throughput: pre-built items, submit all, flush =="
            if mode == "throughput"
            else f"== burst: 10x the queue submitted at once (queue {result.get('burst_queue')}"
            " for 2 KB, a quarter of that for 50 KB) =="
        )
        headers = [
            "pipeline",
            "bytes",
            "queue",
            "items/s",
            "submit us",
            "CPU us/item",
            "exported",
            "dropped",
            "at destination",
        ]
        out.append(title + "\n" + table(headers, rows))
    if result.get("collector"):
        out.append(f"aitel collector: {result['collector']}")
    return "\n\n".join(out)


def memory_table(result: dict[str, Any]) -> str:
    counts = result["counts"]
    headers = ["config", "RSS after warm-up MB"]
    for c in counts:
        headers += [f"+MB @{c:,}", f"B/req @{c:,}"]
    headers.append("delivered")
    rows = []
    for name, r in result["configs"].items():
        if r.get("status") != "ok":
            rows.append([name, str(r.get("status")), *[""] * (2 * len(counts)), r.get("reason")])
            continue
        cells = [name, _num(r["rss_after_warmup_mb"], "{:,.1f}")]
        for p in r["points"]:
            cells += [_num(p["growth_mb"], "{:+,.1f}"), _num(p["bytes_per_request"], "{:+,.0f}")]
        cells.append(_delivery(r))
        rows.append(cells)
    return f"== memory: RSS growth, {result['workload']} workload, one process per config ==\n" + (
        table(headers, rows)
    )


def outage_table(result: dict[str, Any]) -> str:
    """RSS while every destination is down, and what happened to the data."""
    headers = ["config", "RSS after warm-up MB", "peak +MB", "end +MB", "req/s", "data"]
    rows = []
    for name, r in result["configs"].items():
        if r.get("status") != "ok":
            rows.append([name, str(r.get("status")), "", "", "", r.get("reason", "")])
            continue
        rows.append(
            [
                name,
                _num(r["rss_after_warmup_mb"], "{:,.1f}"),
                _num(r["peak_growth_mb"], "{:+,.1f}"),
                _num(r["end_growth_mb"], "{:+,.1f}"),
                _num(r["requests"] / r["seconds"] if r.get("seconds") else None),
                _outage_fate(r),
            ]
        )
    return (
        f"== outage: RSS with every destination down, {result['requests']:,} "
        f"{result['workload']} requests, one process per config ==\n" + table(headers, rows)
    )


def _outage_fate(r: dict[str, Any]) -> str:
    stats = r.get("details", {}).get("pipeline")
    if not stats:
        return ""
    parts = [f"{stats.get('dropped', 0):,} dropped (counted)"]
    if stats.get("spooled"):
        parts.append(f"{stats['spooled']:,} spooled ({r.get('spool_mb', 0):,.1f} MB)")
    if stats.get("queue_depth"):
        parts.append(f"{stats['queue_depth']:,} queued")
    return ", ".join(parts)
