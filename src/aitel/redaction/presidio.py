"""Microsoft Presidio as an extra recognizer, for teams that already run it.

>>> from aitel.redaction import Redactor
>>> from aitel.redaction.presidio import PresidioRecognizer
>>> redactor = Redactor("pii", recognizers=[PresidioRecognizer()])

Presidio's NER models find what patterns cannot (names, places) at a cost of
milliseconds per text; the built-in detectors still run first and win any
overlap. Install with ``pip install "aitel[presidio]"`` plus a spaCy model.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from aitel.redaction.patterns import (
    CREDIT_CARD,
    EMAIL,
    IBAN,
    IP_ADDRESS,
    PHONE,
    US_SSN,
    Finding,
)

__all__ = ["ENTITY_KINDS", "PresidioRecognizer"]

INSTALL_HINT: Final = 'aitel.redaction.presidio needs Presidio: pip install "aitel[presidio]"'

try:
    _analyzer_module = importlib.import_module("presidio_analyzer")
except ImportError as exc:
    raise ImportError(INSTALL_HINT) from exc

ENTITY_KINDS: Final[Mapping[str, str]] = {
    "EMAIL_ADDRESS": EMAIL,
    "PHONE_NUMBER": PHONE,
    "CREDIT_CARD": CREDIT_CARD,
    "IBAN_CODE": IBAN,
    "US_SSN": US_SSN,
    "IP_ADDRESS": IP_ADDRESS,
}
"""Presidio entity types that have an aitel kind; others become their lower-cased name."""

_REPLACEMENTS: Final[Mapping[str, str]] = {
    EMAIL: "<EMAIL>",
    PHONE: "<PHONE>",
    CREDIT_CARD: "<CREDIT_CARD>",
    IBAN: "<IBAN>",
    US_SSN: "<US_SSN>",
    IP_ADDRESS: "<IP_ADDRESS>",
}


class PresidioRecognizer:
    """Findings from a Presidio ``AnalyzerEngine`` (or any object with its ``analyze``)."""

    def __init__(
        self,
        analyzer: Any | None = None,
        *,
        language: str = "en",
        entities: Sequence[str] | None = None,
        score_threshold: float = 0.5,
    ) -> None:
        self.analyzer: Any = analyzer if analyzer is not None else _analyzer_module.AnalyzerEngine()
        self.language = language
        self.entities = list(entities) if entities is not None else None
        self.score_threshold = score_threshold

    def find(self, text: str) -> Iterator[Finding]:
        results = self.analyzer.analyze(
            text=text,
            language=self.language,
            entities=self.entities,
            score_threshold=self.score_threshold,
        )
        for result in results:
            score = getattr(result, "score", 1.0)
            if score is not None and score < self.score_threshold:
                continue
            entity = str(result.entity_type)
            kind = ENTITY_KINDS.get(entity, entity.lower())
            replacement = _REPLACEMENTS.get(kind, f"<{entity.upper()}>")
            start, end = int(result.start), int(result.end)
            if 0 <= start < end <= len(text):
                yield Finding(start, end, kind, replacement)
