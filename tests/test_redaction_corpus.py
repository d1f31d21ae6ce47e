"""Recall and precision of the built-in detectors on a labelled corpus.

The corpus (``tests/data/redaction_corpus.jsonl``) holds hundreds of planted
entities per kind in realistic sentences, and thousands of hard negatives.
An expected span counts as found only when a finding of the same kind covers
all of it (a half-masked secret is a leak). A finding is correct when it
overlaps an expected span of its kind.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aitel.redaction import Redactor
from aitel.redaction.patterns import PII_KINDS, SECRET_KINDS

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "redaction_corpus.jsonl"


def _load_rows() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return _load_rows()


@pytest.fixture(scope="module")
def scores(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    redactor = Redactor("pii")
    expected: Counter[str] = Counter()
    found: Counter[str] = Counter()
    predicted: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for row in rows:
        text = row["text"]
        spans = row["spans"]
        findings = redactor.find(text)
        for span in spans:
            expected[span["kind"]] += 1
            if any(
                f.kind == span["kind"] and f.start <= span["start"] and f.end >= span["end"]
                for f in findings
            ):
                found[span["kind"]] += 1
        for f in findings:
            predicted[f.kind] += 1
            if any(
                s["kind"] == f.kind and s["start"] < f.end and f.start < s["end"] for s in spans
            ):
                correct[f.kind] += 1
    kinds = sorted(set(expected) | set(predicted))
    table = {
        kind: {
            "expected": expected[kind],
            "recall": found[kind] / expected[kind] if expected[kind] else 1.0,
            "predicted": predicted[kind],
            "precision": correct[kind] / predicted[kind] if predicted[kind] else 1.0,
        }
        for kind in kinds
    }
    table["_overall"] = {
        "expected": sum(expected.values()),
        "recall": sum(found.values()) / sum(expected.values()),
        "predicted": sum(predicted.values()),
        "precision": sum(correct.values()) / max(1, sum(predicted.values())),
    }
    return table


def _report(table: dict[str, dict[str, float]]) -> str:
    lines = [f"{'kind':24} {'n':>5} {'recall':>8} {'found':>6} {'precision':>10}"]
    for kind, row in table.items():
        lines.append(
            f"{kind:24} {row['expected']:>5} {row['recall']:>8.4f} "
            f"{row['predicted']:>6} {row['precision']:>10.4f}"
        )
    return "\n".join(lines)


def test_corpus_is_generated_from_the_committed_generator() -> None:
    """The committed corpus is exactly what the seeded generator writes."""
    spec = importlib.util.spec_from_file_location("make_corpus", DATA / "make_redaction_corpus.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render(module.Corpus().generate()) == CORPUS.read_text(encoding="utf-8")


def test_corpus_has_hundreds_of_positives_per_kind_and_hard_negatives(
    rows: list[dict[str, Any]],
) -> None:
    """Every built-in kind is planted at least 100 times; negatives are plentiful."""
    per_kind = Counter(span["kind"] for row in rows for span in row["spans"])
    assert set(per_kind) == SECRET_KINDS | PII_KINDS
    assert min(per_kind.values()) >= 100, per_kind
    assert sum(row["group"] == "negative" for row in rows) >= 1000
    assert CORPUS.stat().st_size < 2_000_000


def test_secret_recall_is_at_least_99_percent(scores: dict[str, dict[str, float]]) -> None:
    """Each secret kind is found (fully covered) in at least 99% of its plantings."""
    low = {k: v["recall"] for k, v in scores.items() if k in SECRET_KINDS and v["recall"] < 0.99}
    assert not low, f"secret recall below 0.99: {low}\n{_report(scores)}"


def test_credit_card_recall_is_at_least_99_percent(scores: dict[str, dict[str, float]]) -> None:
    """Payment card numbers in every common layout are found."""
    assert scores["credit_card"]["recall"] >= 0.99, _report(scores)


def test_pii_recall_is_at_least_95_percent(scores: dict[str, dict[str, float]]) -> None:
    """Every personal-data kind is found in at least 95% of its plantings."""
    low = {k: v["recall"] for k, v in scores.items() if k in PII_KINDS and v["recall"] < 0.95}
    assert not low, f"PII recall below 0.95: {low}\n{_report(scores)}"


def test_overall_precision_is_at_least_95_percent(scores: dict[str, dict[str, float]]) -> None:
    """At least 95% of all findings are real entities."""
    assert scores["_overall"]["precision"] >= 0.95, _report(scores)


def test_every_kind_has_precision_of_at_least_90_percent(
    scores: dict[str, dict[str, float]],
) -> None:
    """No single detector is noisy."""
    low = {k: v["precision"] for k, v in scores.items() if v["precision"] < 0.90}
    assert not low, f"precision below 0.90: {low}\n{_report(scores)}"


def test_hard_negatives_are_left_alone(rows: list[dict[str, Any]]) -> None:
    """UUIDs, hashes, versions, ids, timestamps, dates, prices and ISBNs are not redacted."""
    redactor = Redactor("pii")
    touched = [
        row["text"] for row in rows if row["group"] == "negative" and redactor.find(row["text"])
    ]
    negatives = sum(row["group"] == "negative" for row in rows)
    assert len(touched) / negatives <= 0.01, touched[:20]


def test_redacted_text_never_contains_a_planted_secret(rows: list[dict[str, Any]]) -> None:
    """After redaction, no planted secret value survives anywhere in its line."""
    redactor = Redactor("secrets")
    leaks = []
    for row in rows:
        out = redactor.redact_text(row["text"])
        for span in row["spans"]:
            if span["kind"] in SECRET_KINDS:
                value = row["text"][span["start"] : span["end"]]
                if value in out:
                    leaks.append((span["kind"], value))
    assert len(leaks) <= 0.01 * sum(
        1 for row in rows for span in row["spans"] if span["kind"] in SECRET_KINDS
    ), leaks[:20]
