"""Loading packet files into DuckDB.

Inputs are JSONL packet files (plain, gzip or zstd), directories (every
``*.jsonl*`` file inside), globs, and the collector's SQLite store (table
``packets(packet_id, received_at, body)``). Everything ends up in one
in-memory DuckDB table, ``packets``: one compact row per packet with the
fields the reports need and a small list of per-step facts. Prompts, outputs
and document contents are read to measure them, never kept.

The reader uses a fixed schema (no type auto-detection, so packets of
different shapes cannot confuse it) and is tolerant in stages:

1. every file of a kind is scanned in one strict, parallel pass;
2. a file whose values do not fit the schema (a string where a number
   belongs, an older producer's shape) is read again leniently, misfitting
   values becoming ``null``;
3. a file with malformed lines, invalid UTF-8 or a truncated compressed
   stream is salvaged line by line: readable lines are kept, the others
   counted in :class:`LoadStats`.

Packets are deduplicated on ``packet_id`` (receivers may see a packet twice).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from glob import glob, has_magic
from pathlib import Path
from typing import Any

import duckdb
import orjson

from aitel._filekind import GZIP_MAGIC, FileKind, sniff
from aitel.analysis.cache import CachedFile, FactCache, default_cache_dir
from aitel.analysis.errors import NoInputError
from aitel.analysis.filters import Filters
from aitel.schema import LLM_KINDS

__all__ = [
    "Dataset",
    "FileProblem",
    "LoadStats",
    "SourceFile",
    "connect",
    "discover",
    "LineReader",
    "load",
]

_MAX_OBJECT_BYTES = 256 * 1024 * 1024
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
_CACHE_FORMAT = "2"
_FRESH = "fresh_packets"
# One row per step, the step's fields as columns (table ``steps`` of a cache entry, view ``steps``).
_STEP_ROWS = "SELECT unnest(steps, recursive := true) FROM"

# The fields read from each packet. Unknown fields are skipped; a value of the
# wrong type fails the strict pass and becomes null in the lenient one.
_V = "VARCHAR"
_D = "DOUBLE"
_I = "BIGINT"
READ_SCHEMA: dict[str, Any] = {
    "packet_id": _V,
    "request_id": _V,
    "timestamp": _V,
    "end_time": _V,
    "status": _V,
    "error_message": _V,
    "error": {"type": _V, "message": _V, "step_kind": _V, "step_name": _V},
    "pipeline_metadata": {
        "model_name": _V,
        "ab_variant": _V,
        "app_version": _V,
        "preprocessing_version": _V,
        "environment": _V,
        "session_id": _V,
        "user_id": _V,
        "tags": [_V],
        "metadata": "MAP(VARCHAR, VARCHAR)",
    },
    "payload": {"input": "JSON", "prompt": "JSON"},
    "performance": {
        "latency_ms": _D,
        "time_to_first_token_ms": _D,
        "prompt_tokens": _I,
        "completion_tokens": _I,
        "total_tokens": _I,
        "cost_usd": _D,
        "llm_calls": _I,
        "tool_calls": _I,
        "retries": _I,
    },
    "steps": [
        {
            "step_id": _V,
            "parent_id": _V,
            "kind": _V,
            "name": _V,
            "status": _V,
            "duration_ms": _D,
            "error": {"type": _V},
            "llm": {
                "model_name": _V,
                "prompts": [_V],
                "messages": [{"content": _V}],
                "usage": {"prompt_tokens": _I, "completion_tokens": _I},
                "cost_usd": _D,
            },
            "retrieval": {"documents": [{"score": _D, "source": _V}]},
            "tool": {"name": _V},
        }
    ],
}


def _duck_type(spec: Any) -> str:
    if isinstance(spec, dict):
        inner = ", ".join(f'"{k}" {_duck_type(v)}' for k, v in spec.items())
        return f"STRUCT({inner})"
    if isinstance(spec, list):
        return f"{_duck_type(spec[0])}[]"
    return str(spec)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_COLUMNS_SQL = (
    "{"
    + ", ".join(f"{_sql_str(k)}: {_sql_str(_duck_type(v))}" for k, v in READ_SCHEMA.items())
    + "}"
)
_FROM_JSON_SPEC = _sql_str(json.dumps(READ_SCHEMA))
_LLM_KINDS_SQL = ", ".join(_sql_str(k) for k in sorted(LLM_KINDS))
_RETRIEVAL_KINDS_SQL = "'retriever', 'reranker'"
_ERROR_TYPE_RE = r"^([A-Za-z_][A-Za-z0-9_.]*(?:Error|Exception|Timeout|Exceeded|Interrupt)):\s"

# One compact row per packet. ``src`` is any relation with READ_SCHEMA's columns.
_PROJECTION = f"""
SELECT
    packet_id,
    request_id,
    ts,
    CASE
        WHEN upper(status) IN ('FAILURE', 'FAILED', 'ERROR', 'FAIL') THEN 'FAILURE'
        WHEN upper(status) IN ('SUCCESS', 'SUCCEEDED', 'OK') THEN 'SUCCESS'
        WHEN error IS NOT NULL OR error_message IS NOT NULL THEN 'FAILURE'
        ELSE 'UNKNOWN'
    END AS status,
    coalesce(error.type, nullif(regexp_extract(error_message, {_sql_str(_ERROR_TYPE_RE)}, 1), ''))
        AS error_type,
    coalesce(
        error.message,
        CASE WHEN regexp_matches(error_message, {_sql_str(_ERROR_TYPE_RE)})
             THEN regexp_replace(error_message, {_sql_str(_ERROR_TYPE_RE)}, '')
             ELSE error_message END
    ) AS error_message,
    coalesce(error.step_kind, _failed_step.kind) AS error_step_kind,
    coalesce(error.step_name, _failed_step.name) AS error_step_name,
    coalesce(pipeline_metadata.model_name, _first_llm.llm.model_name) AS model,
    pipeline_metadata.ab_variant AS variant,
    pipeline_metadata.app_version AS app_version,
    pipeline_metadata.preprocessing_version AS preprocessing_version,
    pipeline_metadata.environment AS environment,
    pipeline_metadata.session_id AS session_id,
    pipeline_metadata.user_id AS user_id,
    coalesce(pipeline_metadata.tags, []) AS tags,
    pipeline_metadata.metadata AS metadata,
    coalesce(performance.latency_ms, date_diff('microsecond', ts, end_ts) / 1000.0) AS latency_ms,
    performance.time_to_first_token_ms AS ttft_ms,
    performance.prompt_tokens AS prompt_tokens,
    performance.completion_tokens AS completion_tokens,
    coalesce(performance.total_tokens, performance.prompt_tokens + performance.completion_tokens)
        AS total_tokens,
    performance.cost_usd AS cost_usd,
    coalesce(performance.llm_calls, len(_llm_steps)) AS llm_calls,
    performance.tool_calls AS tool_calls,
    performance.retries AS retries,
    coalesce(
        list_sum(list_transform(_first_llm.llm.messages, lambda m: length(m.content))),
        list_sum(list_transform(_first_llm.llm.prompts, lambda p: length(p))),
        CASE WHEN len(steps) > 0 THEN NULL
             WHEN json_type(coalesce(payload.input, payload.prompt)) = 'VARCHAR'
             THEN length(coalesce(payload.input, payload.prompt)->>'$')
             ELSE length(CAST(coalesce(payload.input, payload.prompt) AS VARCHAR)) END
    ) AS prompt_chars,
    _first_llm.llm.usage.prompt_tokens AS input_tokens,
    list_sum(list_transform(
        list_filter(steps, lambda s: s.kind IN ({_RETRIEVAL_KINDS_SQL})
                                     AND upper(s.status) = 'SUCCESS'),
        lambda s: coalesce(len(s.retrieval.documents), 0))) AS n_docs,
    list_distinct(flatten(list_transform(
        list_filter(steps, lambda s: s.kind IN ({_RETRIEVAL_KINDS_SQL})
                                     AND upper(s.status) = 'SUCCESS'),
        lambda s: CASE
            WHEN len(list_filter(s.retrieval.documents, lambda d: d.source IS NOT NULL)) > 0
            THEN list_transform(list_filter(s.retrieval.documents, lambda d: d.source IS NOT NULL),
                                lambda d: d.source)
            ELSE [s.name] END))) AS sources,
    list_distinct(list_transform(
        list_filter(steps, lambda s: s.kind = 'tool' OR s.tool.name IS NOT NULL),
        lambda s: coalesce(s.tool.name, s.name))) AS tools,
    list_transform(steps, lambda s: {{
        'kind': s.kind,
        'name': s.name,
        'status': upper(s.status),
        'duration_ms': s.duration_ms,
        'leaf': coalesce(NOT list_contains(_parents, s.step_id), TRUE),
        'error_type': s.error.type,
        'model': s.llm.model_name,
        'prompt_tokens': s.llm.usage.prompt_tokens,
        'completion_tokens': s.llm.usage.completion_tokens,
        'cost_usd': s.llm.cost_usd,
        'n_docs': CASE WHEN s.kind IN ({_RETRIEVAL_KINDS_SQL})
                       THEN len(s.retrieval.documents) END,
        'top_score': list_max(list_transform(s.retrieval.documents, lambda d: d.score)),
        'tool': coalesce(s.tool.name, CASE WHEN s.kind = 'tool' THEN s.name END)
    }}) AS steps
FROM (
    SELECT
        * EXCLUDE (steps),
        coalesce(steps, []) AS steps,
        try_cast("timestamp" AS TIMESTAMPTZ)::TIMESTAMP AS ts,
        try_cast(end_time AS TIMESTAMPTZ)::TIMESTAMP AS end_ts,
        list_filter(steps, lambda s: s.kind IN ({_LLM_KINDS_SQL})) AS _llm_steps,
        list_filter(steps, lambda s: s.kind IN ({_LLM_KINDS_SQL}))[1] AS _first_llm,
        list_filter(steps, lambda s: s.error.type IS NOT NULL)[-1] AS _failed_step,
        list_transform(steps, lambda s: s.parent_id) AS _parents
    FROM src
)
"""


FACTS_VERSION = hashlib.sha256(
    f"{_CACHE_FORMAT}\n{duckdb.__version__}\n{_PROJECTION}\n{_COLUMNS_SQL}".encode()
).hexdigest()[:16]
"""Names the extraction: cache entries written by another version are not used."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One input file and how it is stored."""

    path: Path
    kind: FileKind
    origin: Path | None = None
    """The input this file was made from (a collector store exported to JSONL)."""

    @property
    def shown(self) -> str:
        """The path to name in problems: the user's input, not a temporary file."""
        return str(self.origin or self.path)


@dataclass(slots=True)
class FileProblem:
    """Something wrong with one input file; the file was skipped or read in part."""

    path: str
    problem: str


@dataclass(slots=True)
class LoadStats:
    """What loading read, kept and skipped."""

    files: int = 0
    bytes: int = 0
    packets_read: int = 0
    """Packets parsed from the inputs (before deduplication and filters)."""
    packets: int = 0
    """Packets kept for analysis."""
    duplicates: int = 0
    filtered_out: int = 0
    malformed_lines: int = 0
    """Lines that are not a JSON object (bad JSON, bad bytes, arrays, scalars)."""
    unrecognised: int = 0
    """JSON objects with neither ``request_id`` nor ``packet_id``."""
    lenient_files: int = 0
    """Files read leniently because some values did not fit the packet schema."""
    cached_files: int = 0
    """Files whose facts came from the fact cache instead of being parsed again."""
    problems: list[FileProblem] = field(default_factory=list)


def _is_packet_file(path: Path) -> bool:
    name = path.name.lower()
    return ".jsonl" in name or name.endswith(_SQLITE_SUFFIXES)


def discover(inputs: Iterable[str | Path]) -> list[SourceFile]:
    """The packet files named by paths, directories and globs, in a stable order.

    A directory contributes every ``*.jsonl*`` file (and SQLite store) directly
    inside it. Raises :class:`NoInputError` when a path does not exist or a
    glob matches nothing.
    """
    found: dict[Path, None] = {}
    missing: list[str] = []
    for raw in inputs:
        text = str(raw)
        candidates: list[Path]
        if has_magic(text):
            candidates = [Path(p) for p in sorted(glob(text, recursive=True))]
            if not candidates:
                missing.append(text)
        else:
            path = Path(text)
            if not path.exists():
                missing.append(text)
                continue
            candidates = [path]
        for path in candidates:
            if path.is_dir():
                for child in sorted(path.iterdir()):
                    if child.is_file() and _is_packet_file(child):
                        found[child.resolve()] = None
            elif path.is_file():
                found[path.resolve()] = None
    if missing:
        raise NoInputError("no such file, directory or match: " + ", ".join(missing))
    return [SourceFile(path, sniff(path)) for path in found]


def connect(
    threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection set up for analysis (UTC, no progress bar)."""
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {_sql_str(memory_limit)}")
    return con


class LineReader:
    """The raw lines of a JSONL packet file (plain or gzip).

    Iteration stops quietly where a compressed stream is truncated or corrupt;
    :attr:`damaged` then says so. Opening raises :class:`OSError`.
    """

    def __init__(self, path: Path, kind: FileKind) -> None:
        self.path = path
        self.kind = kind
        self.damaged = False

    def _open(self) -> Any:
        if self.kind == "gzip":
            return gzip.open(self.path, "rb")
        return self.path.open("rb")

    def __iter__(self) -> Iterator[bytes]:
        with self._open() as fh:
            try:
                yield from fh
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
                self.damaged = True


class Dataset:
    """Loaded packets in DuckDB, ready for the reports.

    ``con`` holds ``packets`` (one row per packet) and ``steps`` (one row per
    step); :attr:`stats` says what was read. Close
    the dataset (or use it as a context manager) to free memory and delete
    temporary files.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        stats: LoadStats,
        sources: Sequence[SourceFile],
        filters: Filters,
        workdir: Path,
    ) -> None:
        self.con = con
        self.stats = stats
        self.sources = list(sources)
        self.filters = filters
        self._workdir = workdir

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a query against the loaded tables."""
        return self.con.execute(sql, list(params) if params else None).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self.con.execute(sql, list(params) if params else None).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_FILE_IN_ERROR = re.compile(r'(?:file|stream)[: ]+"?([^"\n]+?)"?(?:,|:|\s|$)')


def _offending_file(message: str, files: Sequence[SourceFile]) -> SourceFile | None:
    for src in files:
        if str(src.path) in message:
            return src
    match = _FILE_IN_ERROR.search(message)
    if match:
        name = match.group(1)
        for src in files:
            if str(src.path).endswith(name) or name.endswith(src.path.name):
                return src
    return None


def _is_transform_error(message: str) -> bool:
    return "JSON transform error" in message


class _Loader:
    def __init__(self, con: duckdb.DuckDBPyConnection, workdir: Path, stats: LoadStats) -> None:
        self.con = con
        self.workdir = workdir
        self.stats = stats
        self._temp_index = 0
        self.target = _FRESH
        self.attached: list[str] = []
        con.execute(
            f"CREATE TABLE {_FRESH} AS {_PROJECTION.replace('FROM src', self._empty_src())} LIMIT 0"
        )

    @staticmethod
    def _empty_src() -> str:
        return f"FROM (SELECT unnest(from_json('{{}}', {_FROM_JSON_SPEC})))"

    def _temp(self, suffix: str) -> Path:
        self._temp_index += 1
        return self.workdir / f"part-{self._temp_index:05d}{suffix}"

    def _insert(self, src_sql: str, params: list[Any]) -> int:
        sql = f"INSERT INTO {self.target} " + _PROJECTION.replace("FROM src", f"FROM {src_sql}")
        row = self.con.execute(sql, params).fetchone()
        return int(row[0]) if row else 0

    def _strict(self, files: Sequence[SourceFile], compression: str) -> int:
        src = (
            "read_json(?, format = 'newline_delimited', records = true, "
            f"compression = {_sql_str(compression)}, maximum_object_size = {_MAX_OBJECT_BYTES}, "
            f"columns = {_COLUMNS_SQL})"
        )
        return self._insert(src, [[str(f.path) for f in files]])

    def _lenient(self, path: Path, compression: str) -> int:
        src = (
            "(SELECT unnest(from_json(json, " + _FROM_JSON_SPEC + ")) "
            "FROM read_json_objects(?, format = 'newline_delimited', "
            f"compression = {_sql_str(compression)}, maximum_object_size = {_MAX_OBJECT_BYTES}))"
        )
        return self._insert(src, [[str(path)]])

    def _salvage(self, src: SourceFile) -> int:
        """Copy the readable object lines of a damaged file into a clean temporary file."""
        if src.kind == "zstd":
            self.stats.problems.append(FileProblem(src.shown, "damaged zstd stream skipped"))
            return 0
        clean = self._temp(".jsonl")
        malformed = 0
        kept = 0
        reader = LineReader(src.path, src.kind)
        try:
            with clean.open("wb") as out:
                for line in reader:
                    text = line.strip()
                    if not text:
                        continue
                    try:
                        value = orjson.loads(text)
                    except orjson.JSONDecodeError:
                        malformed += 1
                        continue
                    if not isinstance(value, dict):
                        malformed += 1
                        continue
                    out.write(text.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n")
                    kept += 1
        except OSError as exc:
            self.stats.problems.append(FileProblem(src.shown, f"unreadable: {exc}"))
            return 0
        self.stats.malformed_lines += malformed
        notes = []
        if malformed:
            notes.append(f"{malformed} malformed line(s) skipped")
        if reader.damaged:
            notes.append("compressed stream is truncated; read up to the damage")
        if notes:
            self.stats.problems.append(FileProblem(src.shown, "; ".join(notes)))
        if kept == 0:
            return 0
        try:
            return self._lenient(clean, "none")
        except duckdb.Error as exc:
            self.stats.problems.append(FileProblem(src.shown, f"could not be read: {exc}"))
            return 0

    def _one(self, src: SourceFile, compression: str) -> int:
        try:
            return self._strict([src], compression)
        except duckdb.Error as exc:
            if _is_transform_error(str(exc)):
                return self._lenient_or_salvage(src, compression)
            return self._salvage(src)

    def _lenient_or_salvage(self, src: SourceFile, compression: str) -> int:
        self.stats.lenient_files += 1
        try:
            return self._lenient(src.path, compression)
        except duckdb.Error:
            return self._salvage(src)

    def load_group(self, files: list[SourceFile], compression: str) -> int:
        """Strict bulk pass; on error, isolate the offending file and go on."""
        pending = list(files)
        total = 0
        while pending:
            try:
                total += self._strict(pending, compression)
                return total
            except duckdb.Error as exc:
                message = str(exc)
                bad = _offending_file(message, pending)
                if bad is None:
                    # Cannot tell which file failed: read them one by one.
                    return total + sum(self._one(f, compression) for f in pending)
                pending.remove(bad)
                if _is_transform_error(message):
                    total += self._lenient_or_salvage(bad, compression)
                else:
                    total += self._salvage(bad)
        return total

    def attach(self, facts: Path) -> None:
        """Read a cached facts database in place, as part of ``packets``."""
        alias = f"cached_{len(self.attached)}"
        self.con.execute(f"ATTACH {_sql_str(str(facts))} AS {alias} (READ_ONLY)")
        try:
            self.con.execute(f"SELECT * FROM {alias}.facts, {alias}.steps LIMIT 0")
        except duckdb.Error:
            self.con.execute(f"DETACH {alias}")
            raise
        self.attached.append(alias)

    def load_and_cache(
        self, src: SourceFile, st: os.stat_result, compression: str, cache: FactCache
    ) -> int:
        """Load one file alone and store its rows in the cache for the next analysis."""
        malformed, lenient, problems = (
            self.stats.malformed_lines,
            self.stats.lenient_files,
            len(self.stats.problems),
        )
        readable = src
        if src.kind == "sqlite":
            exported = self.sqlite_to_jsonl(src)
            if exported is None:
                return 0
            readable = exported
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM {_FRESH} LIMIT 0")
        self.target = "staged"
        try:
            rows = self.load_group([readable], compression)
        finally:
            self.target = _FRESH
        record = CachedFile(
            rows=rows,
            malformed_lines=self.stats.malformed_lines - malformed,
            lenient=self.stats.lenient_files > lenient,
            problems=[p.problem for p in self.stats.problems[problems:]],
        )
        if not self._store(src.path, st, cache, record):
            self.con.execute(f"INSERT INTO {_FRESH} SELECT * FROM staged")
        self.con.execute("DROP TABLE staged")
        return rows

    def _store(
        self, source: Path, st: os.stat_result, cache: FactCache, record: CachedFile
    ) -> bool:
        """Write ``staged`` as the cache entry of ``source`` and attach it; False if not."""
        staged = cache.staging_path(source)
        if staged is None:
            return False
        try:
            self.con.execute(f"ATTACH {_sql_str(str(staged))} AS cache_write")
            try:
                self.con.execute("CREATE TABLE cache_write.facts AS SELECT * FROM staged")
                self.con.execute(f"CREATE TABLE cache_write.steps AS {_STEP_ROWS} staged")
            finally:
                self.con.execute("DETACH cache_write")
        except duckdb.Error:
            cache.discard(staged)
            return False
        committed = cache.commit(source, st, staged, record)
        if committed is None:
            return False
        try:
            self.attach(committed)
        except duckdb.Error:
            return False
        return True

    def publish(self) -> None:
        """Name everything loaded ``packets``: the fresh rows and the attached cache entries."""
        if not self.attached:
            self.con.execute(f"ALTER TABLE {_FRESH} RENAME TO packets")
            self.con.execute(f"CREATE VIEW steps AS {_STEP_ROWS} packets")
            return
        parts = [f"SELECT * FROM {alias}.facts" for alias in self.attached]
        step_parts = [f"SELECT * FROM {alias}.steps" for alias in self.attached]
        fresh = self.con.execute(f"SELECT count(*) FROM {_FRESH}").fetchone()
        if fresh and fresh[0]:
            parts.insert(0, f"SELECT * FROM {_FRESH}")
            step_parts.insert(0, f"{_STEP_ROWS} {_FRESH}")
        self.con.execute("CREATE VIEW packets AS " + " UNION ALL ".join(parts))
        self.con.execute("CREATE VIEW steps AS " + " UNION ALL ".join(step_parts))

    def sqlite_to_jsonl(self, src: SourceFile) -> SourceFile | None:
        """Export a collector store's packet bodies as a temporary JSONL file."""
        target = self._temp(".jsonl")
        try:
            db = sqlite3.connect(f"file:{src.path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            self.stats.problems.append(FileProblem(str(src.path), f"cannot open store: {exc}"))
            return None
        malformed = 0
        try:
            with target.open("wb") as out:
                cursor = db.execute("SELECT body FROM packets")
                while True:
                    rows = cursor.fetchmany(10_000)
                    if not rows:
                        break
                    chunk: list[bytes] = []
                    for (body,) in rows:
                        data = store_body(body)
                        if data is None:
                            malformed += 1
                            continue
                        chunk.append(data)
                    if chunk:
                        out.write(b"\n".join(chunk) + b"\n")
        except sqlite3.Error as exc:
            self.stats.problems.append(FileProblem(str(src.path), f"cannot read store: {exc}"))
            return None
        finally:
            db.close()
        if malformed:
            self.stats.malformed_lines += malformed
            self.stats.problems.append(
                FileProblem(str(src.path), f"{malformed} unreadable packet body(ies) skipped")
            )
        return SourceFile(target, "jsonl", origin=src.path)


def store_body(body: Any) -> bytes | None:
    """A collector store row's body as one line of JSON (gunzipped); None if empty or damaged."""
    if body is None:
        return None
    data = body.encode("utf-8", "replace") if isinstance(body, str) else bytes(body)
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return None
    data = data.strip()
    if not data:
        return None
    # Raw newlines can only be whitespace between JSON tokens: flatten to one line.
    return data.replace(b"\n", b" ").replace(b"\r", b" ")


def _compression(src: SourceFile) -> str:
    return "none" if src.kind in ("jsonl", "sqlite") else src.kind


def _fact_cache(cache: Path | bool) -> FactCache | None:
    if cache is False:
        return None
    root = default_cache_dir() if cache is True else Path(cache)
    return None if root is None else FactCache(root, FACTS_VERSION)


def _load_via_cache(
    loader: _Loader, cache: FactCache, src: SourceFile, st: os.stat_result, compression: str
) -> None:
    stats = loader.stats
    hit = cache.lookup(src.path, st)
    if hit is not None:
        facts, record = hit
        try:
            loader.attach(facts)
        except duckdb.Error:
            pass  # An unreadable entry: parse the file instead (and rewrite the entry).
        else:
            stats.cached_files += 1
            stats.malformed_lines += record.malformed_lines
            stats.lenient_files += int(record.lenient)
            stats.problems.extend(FileProblem(str(src.path), p) for p in record.problems)
            return
    loader.load_and_cache(src, st, compression, cache)


def load(
    inputs: Iterable[str | Path],
    filters: Filters | None = None,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    cache: Path | bool = True,
) -> Dataset:
    """Load packets from files, directories, globs and SQLite stores.

    Raises :class:`NoInputError` when an input does not exist or no packet
    file is found. Damaged files never raise: what can be read is loaded and
    the rest is reported in :attr:`Dataset.stats`.

    ``cache``: True uses the fact cache in :func:`default_cache_dir` (unless
    ``AITEL_ANALYSIS_CACHE=off``), a path uses that directory, False reads
    every file afresh without touching any cache.
    """
    sources = discover(inputs)
    if not sources:
        raise NoInputError("no packet files (*.jsonl, *.jsonl.gz, SQLite store) found")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    facts = _fact_cache(cache)
    flt = filters or Filters()
    workdir = Path(tempfile.mkdtemp(prefix="aitel-analysis-"))
    con = connect(threads, memory_limit)
    con.execute(f"SET temp_directory = {_sql_str(str(workdir / 'spill'))}")
    stats = LoadStats(files=len(sources))
    try:
        loader = _Loader(con, workdir, stats)
        groups: dict[str, list[SourceFile]] = {"none": [], "gzip": [], "zstd": []}
        for src in sources:
            try:
                st = src.path.stat()
            except OSError as exc:
                stats.problems.append(FileProblem(str(src.path), f"unreadable: {exc}"))
                continue
            size = st.st_size
            stats.bytes += size
            if size == 0:
                continue
            if facts is not None:
                _load_via_cache(loader, facts, src, st, _compression(src))
                continue
            if src.kind == "sqlite":
                exported = loader.sqlite_to_jsonl(src)
                if exported is not None:
                    groups["none"].append(exported)
            elif src.kind == "jsonl":
                groups["none"].append(src)
            else:
                groups[src.kind].append(src)
        for compression, files in groups.items():
            if files:
                loader.load_group(files, compression)
        loader.publish()
        if facts is not None:
            facts.prune()

        counts = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE request_id IS NULL AND packet_id IS NULL), "
            "count(packet_id) - count(DISTINCT packet_id) FROM packets"
        ).fetchone()
        assert counts is not None
        stats.unrecognised = int(counts[1])
        stats.packets_read = int(counts[0]) - stats.unrecognised
        stats.duplicates = int(counts[2] or 0)
        where, params = flt.sql()
        if stats.unrecognised:
            where = f"({where}) AND (request_id IS NOT NULL OR packet_id IS NOT NULL)"
        if stats.duplicates or flt.active or stats.unrecognised:
            dedupe = (
                "QUALIFY packet_id IS NULL OR "
                "row_number() OVER (PARTITION BY packet_id ORDER BY ts NULLS LAST) = 1"
                if stats.duplicates
                else ""
            )
            con.execute(
                f"CREATE TABLE kept AS SELECT * FROM packets WHERE {where} {dedupe}", params
            )
            con.execute("DROP VIEW steps")
            con.execute("DROP VIEW packets" if loader.attached else "DROP TABLE packets")
            con.execute("ALTER TABLE kept RENAME TO packets")
            con.execute(f"CREATE VIEW steps AS {_STEP_ROWS} packets")
        kept_row = con.execute("SELECT count(*) FROM packets").fetchone()
        stats.packets = int(kept_row[0]) if kept_row else 0
        stats.filtered_out = stats.packets_read - stats.duplicates - stats.packets
    except BaseException:
        con.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Dataset(con, stats, sources, flt, workdir)
