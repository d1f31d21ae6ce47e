"""Long texts: the scan jumps between a needle's characters and still finds everything."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from aitel.redaction import Redactor
from aitel.redaction._engine import _HOPS_FROM, _matches
from aitel.redaction.keys import CREDENTIAL_WORDS
from aitel.redaction.patterns import SECRET_KINDS, lower_same_length

CORPUS = Path(__file__).parent / "data" / "redaction_corpus.jsonl"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def needles_side_by_side(redactor: Redactor) -> str:
    """Each needle right after itself, after its first character, after part of itself,
    the groups far apart (so the scan keeps jumping)."""
    needles = sorted({needle for _, needle in redactor._engine._needles} | set(CREDENTIAL_WORDS))
    gap = "~" * 600
    return gap.join(
        f"{needle}{needle} {needle[0]}{needle} {needle[:-1]}{needle}" for needle in needles
    )


def long_texts(rows: list[dict[str, Any]]) -> list[str]:
    """Every corpus line in one text, in shuffled chunks, and texts built to stress the jumps."""
    lines = [row["text"] for row in rows]
    random.Random(7).shuffle(lines)
    chunks = ["\n".join(lines[i : i + 400]) for i in range(0, len(lines), 400)]
    prose = "Refunds are issued within 14 days of receiving the returned item. " * 300
    return [
        "\n".join(lines),
        *chunks,
        prose,  # no needle at all
        "eyJ" + prose + "ghp_" + "x" * 40,  # a needle at both ends
        prose + "-_-/" * 3000,  # sparse, then dense characters
        ("sk-" + "a" * 60 + " ") * 400,  # dense needles
        needles_side_by_side(Redactor("pii")),
    ]


def scanners(redactor: Redactor) -> list[tuple[bool, str, Any]]:
    engine = redactor._engine
    engine.could_match("", CREDENTIAL_WORDS)  # builds the whole-document plan
    plans = [engine._plan, *engine._document_plans.values()]
    return [(lowered, char, scanner) for plan in plans for lowered, char, scanner, *_ in plan]


def test_jumps_find_what_the_regex_scan_finds(rows: list[dict[str, Any]]) -> None:
    redactor = Redactor("pii")
    texts = long_texts(rows)
    assert all(len(text) > _HOPS_FROM for text in texts)
    compared = 0
    for text in texts:
        lowered = lower_same_length(text)
        for on_lowered, char, scanner in scanners(redactor):
            haystack = lowered if on_lowered else text
            at = haystack.find(char)
            if at < 0:
                continue
            expected = [(m.span(), m.lastgroup) for m in scanner.finditer(haystack)]
            found = [(m.span(), m.lastgroup) for m in _matches(scanner, char, haystack, at)]
            assert found == expected, (scanner.pattern, len(text))
            compared += len(expected)
    assert compared > 1_000  # the texts hold plenty of needles


def test_secrets_in_a_long_text_are_found_as_line_by_line(rows: list[dict[str, Any]]) -> None:
    """Every secret redacted from its own line is also redacted from a 100 KB text of lines."""
    redactor = Redactor("secrets")
    positives = [row for row in rows if any(s["kind"] in SECRET_KINDS for s in row["spans"])]
    text = "\n\n".join(row["text"] for row in positives)
    assert len(text) > 100_000
    out = redactor.redact_text(text)
    missed = []
    for row in positives:
        alone = redactor.redact_text(row["text"])
        for span in row["spans"]:
            value = row["text"][span["start"] : span["end"]]
            if span["kind"] in SECRET_KINDS and value not in alone and value in out:
                missed.append((span["kind"], value))
    assert not missed, missed[:10]
