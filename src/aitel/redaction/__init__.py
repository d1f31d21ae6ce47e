"""Redaction: secrets and personal data never leave the process.

>>> from aitel.redaction import Redactor
>>> Redactor("pii").redact_text("mail bob@example.com, key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t")
'mail <EMAIL>, key <SECRET:openai>'

:class:`RedactionProcessor` runs a :class:`Redactor` over every packet in the
export pipeline; :data:`PRESETS` names ready-made configurations; the
Presidio adapter lives in :mod:`aitel.redaction.presidio` (optional extra).
"""

from __future__ import annotations

from aitel.redaction.keys import is_credential_key, without_credentials
from aitel.redaction.patterns import (
    CREDENTIAL_MARKER,
    DETECTORS,
    FAILED_MARKER,
    HIDDEN_MARKER,
    KINDS,
    PII_KINDS,
    SECRET_KINDS,
    Detector,
    Finding,
    Recognizer,
)
from aitel.redaction.presets import PRESETS, Preset, resolve_presets
from aitel.redaction.processor import RedactionConfig, RedactionProcessor
from aitel.redaction.scrubber import (
    NullRedactor,
    RedactionCallback,
    RedactionMatch,
    RedactionSession,
    Redactor,
    ScrubResult,
)

__all__ = [
    # redact
    "Redactor",
    "NullRedactor",
    "RedactionProcessor",
    "RedactionConfig",
    "RedactionMatch",
    "RedactionCallback",
    "RedactionSession",
    "ScrubResult",
    # configure
    "PRESETS",
    "Preset",
    "resolve_presets",
    # detect
    "DETECTORS",
    "Detector",
    "Finding",
    "Recognizer",
    "KINDS",
    "SECRET_KINDS",
    "PII_KINDS",
    # credentials
    "is_credential_key",
    "without_credentials",
    # markers
    "CREDENTIAL_MARKER",
    "FAILED_MARKER",
    "HIDDEN_MARKER",
]
