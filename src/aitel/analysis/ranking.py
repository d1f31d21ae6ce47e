"""Root-cause ranking: which attributes are over-represented among failures.

Every request gets a set of attributes (model, variant, versions, prompt
length bucket, input token bucket, retrieved document count bucket, retrieval
sources, tools, hour of day, user, low-cardinality metadata keys,
environment). For each attribute value, and for each pair of values of the
main attributes, the failure rate of the requests that have it is compared
with that of the requests that have another value of the same attribute
(requests where the attribute is unknown are left out of that comparison):

* ``lift`` is the ratio of the two failure rates;
* the p-value is one-sided (Fisher's exact test for small counts, otherwise
  the chi-square test with Yates' correction); a pair must also beat each of
  its two halves alone, so it shows an interaction and not just one strong
  half;
* p-values are adjusted with Benjamini-Hochberg across all hypotheses;
* only values with at least ``min_failures`` failures are tested.

Significant values are then taken greedily, strongest lift first. A value is
kept as a finding only if it is still over-represented among the requests no
earlier finding explains; otherwise it is listed under the finding that
explains most of its failures. So the top lines point at distinct causes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

from aitel.analysis.loading import Dataset
from aitel.analysis.model import Condition, Finding, Ranking, RelatedFinding
from aitel.analysis.stats import benjamini_hochberg, over_representation_p

__all__ = ["Attribute", "attributes", "bucket_sql", "ranking"]


def bucket_sql(column: str, edges: list[int], labels: list[str]) -> str:
    """A CASE expression putting a number into labelled ranges (``len(labels) == len(edges)+1``)."""
    parts = [f"WHEN {column} IS NULL THEN NULL"]
    for edge, label in zip(edges, labels, strict=False):
        parts.append(f"WHEN {column} < {edge} THEN '{label}'")
    parts.append(f"ELSE '{labels[-1]}'")
    return "CASE " + " ".join(parts) + " END"


_CHAR_EDGES = [500, 1000, 2000, 4000, 8000, 16000, 32000]
_CHAR_LABELS = ["<500", "500-1k", "1k-2k", "2k-4k", "4k-8k", "8k-16k", "16k-32k", ">=32k"]
_TOKEN_EDGES = [250, 500, 1000, 2000, 4000, 8000, 16000]
_TOKEN_LABELS = ["<250", "250-500", "500-1k", "1k-2k", "2k-4k", "4k-8k", "8k-16k", ">=16k"]
_DOC_EDGES = [1, 2, 4, 6, 11]
_DOC_LABELS = ["0", "1", "2-3", "4-5", "6-10", ">=11"]


@dataclass(frozen=True, slots=True)
class Attribute:
    """A request attribute: its name, SQL expression, and whether it holds a list."""

    name: str
    sql: str
    multi: bool = False
    pairable: bool = False
    known_when_empty: bool = False
    """For list attributes: an empty list is a known value ("none"), not unknown."""
    raw: str | None = None
    """For bucketed numbers: the number itself, so a bucket can grow into ``>= edge``."""
    edges: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()

    def open_ended(self) -> dict[str, int]:
        """``">=4k"``-style labels of the open-ended ranges, with their lower edge."""
        return {
            ">=" + label.split("-")[0]: edge
            for edge, label in zip(self.edges, self.labels[1:-1], strict=False)
        }


def _ordinal(name: str, column: str, edges: list[int], labels: list[str]) -> Attribute:
    return Attribute(
        name,
        bucket_sql(column, edges, labels),
        pairable=True,
        raw=column,
        edges=tuple(edges),
        labels=tuple(labels),
    )


_BASE_ATTRIBUTES = [
    Attribute("model", "model", pairable=True),
    Attribute("variant", "variant", pairable=True),
    Attribute("app_version", "app_version", pairable=True),
    Attribute("preprocessing_version", "preprocessing_version", pairable=True),
    Attribute("environment", "environment", pairable=True),
    _ordinal("prompt_chars", "prompt_chars", _CHAR_EDGES, _CHAR_LABELS),
    _ordinal("input_tokens", "input_tokens", _TOKEN_EDGES, _TOKEN_LABELS),
    _ordinal("retrieved_docs", "n_docs", _DOC_EDGES, _DOC_LABELS),
    Attribute("hour_utc", "lpad(CAST(hour(ts) AS VARCHAR), 2, '0')"),
    Attribute("user", "user_id"),
    Attribute("retrieval_source", "sources", multi=True),
    Attribute("tool", "tools", multi=True, known_when_empty=True),
    Attribute("tag", "tags", multi=True, known_when_empty=True),
]

_MAX_METADATA_KEYS = 10
_MAX_METADATA_VALUES = 20


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def attributes(ds: Dataset) -> list[Attribute]:
    """The attributes to test: the fixed set plus low-cardinality metadata keys."""
    rows = ds.query(
        f"""
        SELECT k, count(DISTINCT v) AS values FROM (
            SELECT unnest(map_keys(metadata)) AS k, unnest(map_values(metadata)) AS v
            FROM packets WHERE metadata IS NOT NULL
        ) GROUP BY k HAVING count(DISTINCT v) BETWEEN 2 AND {_MAX_METADATA_VALUES}
        ORDER BY count(*) DESC, k LIMIT {_MAX_METADATA_KEYS}
        """
    )
    extra = [
        Attribute(f"metadata.{key}", f"element_at(metadata, {_quote_str(str(key))})[1]")
        for key, _ in rows
    ]
    return _BASE_ATTRIBUTES + extra


@dataclass
class _Cell:
    conditions: tuple[tuple[str, str], ...]
    n: int
    f: int
    n_known: int
    f_known: int
    p: float = 1.0
    q: float = 1.0
    lift: float = 0.0
    rate: float = 0.0
    rate_else: float = 0.0
    related: list[_Cell] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " & ".join(f"{a} = {v}" for a, v in self.conditions)


def _stats(cell: _Cell) -> None:
    a = cell.f
    b = cell.n - cell.f
    c = cell.f_known - cell.f
    d = (cell.n_known - cell.n) - c
    cell.rate = a / cell.n if cell.n else 0.0
    others = c + d
    cell.rate_else = c / others if others else 0.0
    floor = 0.5 / (others + 1)
    cell.lift = cell.rate / max(cell.rate_else, floor)
    cell.p = over_representation_p(a, b, c, max(d, 0))


def _p_greater(f1: int, n1: int, f2: int, n2: int) -> float:
    """One-sided p that rate f1/n1 exceeds f2/n2."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    return over_representation_p(f1, n1 - f1, f2, n2 - f2)


def _raw_column(attr: Attribute) -> str:
    return _quote_ident(attr.name + "#raw")


def _predicate(attr: Attribute, value: str) -> str:
    column = _quote_ident(attr.name)
    if attr.raw is not None and value in attr.open_ended():
        return f"{_raw_column(attr)} >= {attr.open_ended()[value]}"
    if attr.multi:
        return f"list_contains({column}, {_quote_str(value)})"
    return f"{column} = {_quote_str(value)}"


def _known(attr: Attribute) -> str:
    column = _quote_ident(attr.name)
    if attr.multi:
        if attr.known_when_empty:
            return f"{column} IS NOT NULL"
        return f"len({column}) > 0"
    return f"{column} IS NOT NULL"


def ranking(
    ds: Dataset,
    *,
    alpha: float = 0.05,
    min_failures: int | None = None,
    min_lift: float = 1.25,
    top: int = 10,
) -> Ranking:
    """Attribute values (and pairs) over-represented among failures, most likely causes first.

    ``min_failures`` defaults to 1% of failures (at least 5).
    """
    try:
        return _ranking(ds, alpha=alpha, min_failures=min_failures, min_lift=min_lift, top=top)
    finally:
        ds.con.execute("DROP TABLE IF EXISTS _attrs")


def _ranking(
    ds: Dataset, *, alpha: float, min_failures: int | None, min_lift: float, top: int
) -> Ranking:
    attrs = attributes(ds)
    by_name = {a.name: a for a in attrs}
    con = ds.con
    select = ", ".join(
        [f"{a.sql} AS {_quote_ident(a.name)}" for a in attrs]
        + [f"{a.raw} AS {_raw_column(a)}" for a in attrs if a.raw is not None]
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _attrs AS "
        f"SELECT (status = 'FAILURE') AS failed, {select} FROM packets WHERE status <> 'UNKNOWN'"
    )
    totals = con.execute("SELECT count(*), count(*) FILTER (WHERE failed) FROM _attrs").fetchone()
    n_total, f_total = (int(totals[0]), int(totals[1])) if totals else (0, 0)
    support = min_failures if min_failures is not None else max(5, math.ceil(0.01 * f_total))
    method = (
        "lift of failure rate vs. other known values of the attribute; one-sided Fisher exact "
        "(small counts) or Yates chi-square test; pairs must beat each half; Benjamini-Hochberg "
        "across hypotheses; greedy selection of findings that remain over-represented among "
        "requests not explained by earlier findings"
    )
    empty = Ranking(
        method=method,
        alpha=alpha,
        min_failures=support,
        min_lift=min_lift,
        hypotheses_tested=0,
        findings=[],
    )
    if f_total in (0, n_total):
        return empty

    cells = _single_cells(ds, attrs, support) + _pair_cells(ds, attrs, support)
    if not cells:
        return empty
    q_values = benjamini_hochberg([c.p for c in cells])
    for cell, q in zip(cells, q_values, strict=True):
        cell.q = q
    candidates = [c for c in cells if c.q < alpha and c.lift >= min_lift and c.f >= support]
    candidates = _open_ranges(ds, by_name, candidates, alpha=alpha)
    candidates.sort(key=lambda c: (-c.lift, -c.f, c.label))
    accepted = _select(
        ds, by_name, candidates, alpha=alpha, min_lift=min_lift, support=support, limit=top
    )
    findings = [
        Finding(
            rank=i + 1,
            label=cell.label,
            conditions=[Condition(attribute=a, value=v) for a, v in cell.conditions],
            requests=cell.n,
            failures=cell.f,
            failure_rate=cell.rate,
            failure_rate_elsewhere=cell.rate_else,
            lift=cell.lift,
            share_of_failures=cell.f / f_total,
            excess_failures=max(0.0, cell.f - cell.n * cell.rate_else),
            p_value=cell.p,
            q_value=cell.q,
            related=[
                RelatedFinding(
                    label=r.label,
                    conditions=[Condition(attribute=a, value=v) for a, v in r.conditions],
                    lift=r.lift,
                    failures=r.f,
                )
                for r in cell.related[:5]
            ],
        )
        for i, cell in enumerate(accepted)
    ]
    return Ranking(
        method=method,
        alpha=alpha,
        min_failures=support,
        min_lift=min_lift,
        hypotheses_tested=len(cells),
        findings=findings,
    )


def _single_cells(ds: Dataset, attrs: list[Attribute], support: int) -> list[_Cell]:
    cells: list[_Cell] = []
    single = [a for a in attrs if not a.multi]
    if single:
        cols = ", ".join(_quote_ident(a.name) for a in single)
        sets = ", ".join(f"({_quote_ident(a.name)})" for a in single)
        groupings = ", ".join(f"GROUPING({_quote_ident(a.name)})" for a in single)
        rows = ds.query(
            f"SELECT [{groupings}], {cols}, count(*), count(*) FILTER (WHERE failed) "
            f"FROM _attrs GROUP BY GROUPING SETS ({sets})"
        )
        known: dict[str, list[int]] = {a.name: [0, 0] for a in single}
        found: list[tuple[str, str, int, int]] = []
        for row in rows:
            flags = row[0]
            index = flags.index(0)
            name = single[index].name
            value = row[1 + index]
            n, f = int(row[-2]), int(row[-1])
            if value is None:
                continue
            known[name][0] += n
            known[name][1] += f
            found.append((name, str(value), n, f))
        for name, value, n, f in found:
            if f >= support:
                nk, fk = known[name]
                cells.append(_Cell(((name, value),), n, f, nk, fk))
    for attr in (a for a in attrs if a.multi):
        column = _quote_ident(attr.name)
        rows = ds.query(
            f"SELECT v, count(*), count(*) FILTER (WHERE failed) FROM "
            f"(SELECT unnest(list_distinct({column})) AS v, failed FROM _attrs) "
            f"WHERE v IS NOT NULL GROUP BY v HAVING count(*) FILTER (WHERE failed) >= ?",
            [support],
        )
        if not rows:
            continue
        known_row = ds.query(
            f"SELECT count(*), count(*) FILTER (WHERE failed) FROM _attrs WHERE {_known(attr)}"
        )[0]
        for value, n, f in rows:
            cells.append(
                _Cell(
                    ((attr.name, str(value)),), int(n), int(f), int(known_row[0]), int(known_row[1])
                )
            )
    for cell in cells:
        _stats(cell)
    return cells


def _pair_cells(ds: Dataset, attrs: list[Attribute], support: int) -> list[_Cell]:
    pairable = [a for a in attrs if a.pairable and not a.multi]
    pairs = list(combinations(pairable, 2))
    if not pairs:
        return []
    names = [_quote_ident(a.name) for a in pairable]
    sets = ", ".join(f"({_quote_ident(x.name)}, {_quote_ident(y.name)})" for x, y in pairs)
    groupings = ", ".join(f"GROUPING({n})" for n in names)
    rows = ds.query(
        f"SELECT [{groupings}], {', '.join(names)}, count(*), count(*) FILTER (WHERE failed) "
        f"FROM _attrs GROUP BY GROUPING SETS ({sets})"
    )
    # Per pair of attributes: cells with both values known, and marginals within them.
    per_pair: dict[tuple[int, int], list[tuple[str, str, int, int]]] = {}
    for row in rows:
        flags = row[0]
        i, j = (k for k, flag in enumerate(flags) if flag == 0)
        x, y = row[1 + i], row[1 + j]
        if x is None or y is None:
            continue
        per_pair.setdefault((i, j), []).append((str(x), str(y), int(row[-2]), int(row[-1])))
    cells: list[_Cell] = []
    for (i, j), items in per_pair.items():
        n_known = sum(it[2] for it in items)
        f_known = sum(it[3] for it in items)
        by_x: dict[str, list[int]] = {}
        by_y: dict[str, list[int]] = {}
        for x, y, n, f in items:
            bx = by_x.setdefault(x, [0, 0])
            bx[0] += n
            bx[1] += f
            by_y_ = by_y.setdefault(y, [0, 0])
            by_y_[0] += n
            by_y_[1] += f
        for x, y, n, f in items:
            if f < support:
                continue
            cell = _Cell(((pairable[i].name, x), (pairable[j].name, y)), n, f, n_known, f_known)
            _stats(cell)
            # Intersection-union test: the pair must beat x without y and y without x.
            nx, fx = by_x[x][0] - n, by_x[x][1] - f
            ny, fy = by_y[y][0] - n, by_y[y][1] - f
            cell.p = max(cell.p, _p_greater(f, n, fx, nx), _p_greater(f, n, fy, ny))
            cells.append(cell)
    return cells


def _open_ranges(
    ds: Dataset, by_name: dict[str, Attribute], candidates: list[_Cell], *, alpha: float
) -> list[_Cell]:
    """Grow a bucket (``4k-8k``) into an open range (``>=4k``) when that explains more.

    Thresholds rarely fall on bucket edges: a cause like "prompts over 5,000
    characters" spreads over several buckets. The open range replaces the
    bucket if it covers more failures with at least 80% of the bucket's lift.
    """
    growable: list[tuple[int, _Cell]] = []
    for index, cell in enumerate(candidates):
        conditions = list(cell.conditions)
        changed = False
        for k, (name, value) in enumerate(conditions):
            attr = by_name[name]
            if attr.raw is None or value not in attr.labels[1:-1]:
                continue
            conditions[k] = (name, ">=" + value.split("-")[0])
            changed = True
        if changed:
            growable.append((index, _Cell(tuple(conditions), 0, 0, cell.n_known, cell.f_known)))
    if not growable:
        return candidates
    aggregates: list[str] = []
    for _, grown in growable:
        pred = " AND ".join(_predicate(by_name[a], v) for a, v in grown.conditions)
        known = " AND ".join(_known(by_name[a]) for a, _ in grown.conditions)
        aggregates += [
            f"count(*) FILTER (WHERE {pred})",
            f"count(*) FILTER (WHERE {pred} AND failed)",
            f"count(*) FILTER (WHERE {known})",
            f"count(*) FILTER (WHERE {known} AND failed)",
        ]
    row = ds.query(f"SELECT {', '.join(aggregates)} FROM _attrs")[0]
    result = list(candidates)
    labels = {c.label for c in candidates}
    for k, (index, grown) in enumerate(growable):
        grown.n, grown.f, grown.n_known, grown.f_known = (int(v) for v in row[4 * k : 4 * k + 4])
        _stats(grown)
        original = candidates[index]
        if (
            grown.f > original.f
            and grown.lift >= 0.8 * original.lift
            and grown.p < alpha
            and grown.label not in labels
        ):
            grown.q = original.q
            grown.p = max(grown.p, original.p)
            result[index] = grown
            labels.add(grown.label)
    return result


def _select(
    ds: Dataset,
    by_name: dict[str, Attribute],
    candidates: list[_Cell],
    *,
    alpha: float,
    min_lift: float,
    support: int,
    limit: int,
) -> list[_Cell]:
    """Greedy choice of findings that stay over-represented outside earlier findings."""
    accepted: list[_Cell] = []
    remaining = list(candidates)
    if not remaining:
        return accepted
    # Evaluate every candidate's predicate once into a boolean column.
    index_of = {id(cell): k for k, cell in enumerate(candidates)}
    columns = []
    for k, cell in enumerate(candidates):
        pred = " AND ".join(_predicate(by_name[a], v) for a, v in cell.conditions)
        kn = " AND ".join(_known(by_name[a]) for a, _ in cell.conditions)
        columns.append(f"coalesce({pred}, FALSE) AS m{k}, coalesce({kn}, FALSE) AS k{k}")
    ds.con.execute(
        f"CREATE OR REPLACE TEMP TABLE _cand AS SELECT failed, {', '.join(columns)} FROM _attrs"
    )

    def predicate(cell: _Cell) -> str:
        return f"m{index_of[id(cell)]}"

    def known(cell: _Cell) -> str:
        return f"k{index_of[id(cell)]}"

    while remaining and len(accepted) < limit:
        if not accepted:
            accepted.append(remaining.pop(0))
            continue
        outside = " AND ".join(f"NOT {predicate(c)}" for c in accepted)
        aggregates: list[str] = []
        for cell in remaining:
            pred, kn = predicate(cell), known(cell)
            aggregates += [
                f"count(*) FILTER (WHERE {outside} AND {pred})",
                f"count(*) FILTER (WHERE {outside} AND {pred} AND failed)",
                f"count(*) FILTER (WHERE {outside} AND {kn})",
                f"count(*) FILTER (WHERE {outside} AND {kn} AND failed)",
            ]
            aggregates += [
                f"count(*) FILTER (WHERE {pred} AND {predicate(acc)} AND failed)"
                for acc in accepted
            ]
        row = ds.query(f"SELECT {', '.join(aggregates)} FROM _cand")[0]
        width = 4 + len(accepted)
        chosen: int | None = None
        for index, cell in enumerate(remaining):
            base = index * width
            n, f, nk, fk = (int(v) for v in row[base : base + 4])
            residual = _Cell(cell.conditions, n, f, nk, fk)
            _stats(residual)
            if f >= support and residual.lift >= min_lift and residual.p < alpha / len(candidates):
                chosen = index
                break
            overlaps = [int(v) for v in row[base + 4 : base + width]]
            owner = max(range(len(accepted)), key=lambda k: overlaps[k])
            accepted[owner].related.append(cell)
        if chosen is None:
            break
        accepted.append(remaining[chosen])
        remaining = remaining[chosen + 1 :]
    ds.con.execute("DROP TABLE IF EXISTS _cand")
    return accepted
