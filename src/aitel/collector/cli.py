"""``aitel collect``: run the collector in the foreground."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .._cli_types import at_least, port, positive_number

TOKEN_ENV = "AITEL_COLLECTOR_TOKEN"


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``collect`` sub-command to an ``argparse`` sub-parser set."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "collect",
        help="receive packets over HTTP and store them in SQLite",
        description=(
            "Receive packet batches at POST /v1/packets and store each packet once "
            "(by packet_id) in an SQLite file that `aitel analyze` reads."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=port, default=4319, help="port to listen on (default 4319)")
    parser.add_argument("--store", default="aitel.db", help="SQLite file (default aitel.db)")
    parser.add_argument(
        "--token",
        default=None,
        help=f"bearer token clients must send (default ${TOKEN_ENV}; none: no authentication)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=positive_number,
        default=64.0,
        help="largest request body in MiB (413 above)",
    )
    parser.add_argument(
        "--max-batch-packets",
        type=at_least(1),
        default=10_000,
        help="most packets in one request (413 above; default 10000)",
    )
    parser.add_argument(
        "--queue",
        type=at_least(1),
        default=64,
        help="batches waiting to be written before answering 429 (default 64)",
    )
    parser.add_argument(
        "--synchronous",
        default="FULL",
        choices=["OFF", "NORMAL", "FULL", "EXTRA"],
        type=str.upper,
        help="SQLite synchronous mode: FULL syncs every commit (default), NORMAL survives crashes "
        "of the collector but not of the machine",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        type=str.lower,
        help="uvicorn log level (default warning)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The ``collect`` command; returns the exit code."""
    try:
        from .app import CollectorConfig
        from .server import run_collector
    except ImportError as exc:
        print(
            f"aitel collect: {exc}. Install it with: pip install 'aitel[collector]'",
            file=sys.stderr,
        )
        return 2
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    if token is None and args.host not in {"127.0.0.1", "localhost", "::1"}:
        print(
            f"aitel collect: warning: no token; anyone who can reach {args.host} can write packets",
            file=sys.stderr,
        )
    config = CollectorConfig(
        store=args.store,
        token=token,
        host=args.host,
        port=args.port,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_batch_packets=args.max_batch_packets,
        max_pending_batches=args.queue,
        synchronous=args.synchronous,
        log_level=args.log_level,
    )
    try:
        return run_collector(config)
    except (OSError, ValueError) as exc:
        print(f"aitel collect: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """``python -m aitel.collector``: the same options as ``aitel collect``."""
    parser = argparse.ArgumentParser(prog="python -m aitel.collector")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["collect", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code
