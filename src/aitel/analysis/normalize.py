"""Error message normalisation: masks the parts of a message that vary per request.

``"timeout after 30s on doc 123"`` and ``"timeout after 45s on doc 456"``
both become ``"timeout after <n>s on doc <n>"``, so they count as one error.
Masked, in this order: URLs, e-mail addresses, UUIDs, quoted values, file
paths, IP addresses, hex numbers and hex ids (8+ hex digits), then, with
every run of digits reduced to one, ids that mix letters and three or more
digit runs (``req_8f3a91c2``), and finally any remaining number.

No rule depends on which digits a message holds, so replacing each digit by
``0`` never changes the normal form; the loader relies on that to group
messages cheaply before normalising each distinct shape once.
"""

from __future__ import annotations

import re

__all__ = ["MAX_MESSAGE_CHARS", "normalize_message"]

MAX_MESSAGE_CHARS = 300
"""Messages are cut to this length before normalising (tracebacks add nothing to the group)."""

_BEFORE_COLLAPSE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`]+"), "<url>"),
    (re.compile(r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b"), "<email>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"(?<![\w'])'[^'\n]{1,200}'(?![\w'])"), "'<str>'"),
    (re.compile(r'(?<![\w"\\])"[^"\n]{1,200}"(?![\w"])'), '"<str>"'),
    (re.compile(r"(?<![\w`])`[^`\n]{1,200}`(?![\w`])"), "`<str>`"),
    (
        re.compile(r"(?<![\w/.])(?:[A-Za-z]:)?(?:\.{0,2}[\\/][\w.@~+\-]+){2,}[\\/]?"),
        "<path>",
    ),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b0[xX][0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<hex>"),
]
_DIGIT_RUN = re.compile(r"\d+")
_AFTER_COLLAPSE: list[tuple[re.Pattern[str], str]] = [
    # Three or more digit runs inside one token: an id such as req_8f3a91c2.
    (re.compile(r"\b(?:[A-Za-z_\-]*0){3,}[A-Za-z0-9_\-]*"), "<id>"),
    (re.compile(r"0(?:[.,]0)*"), "<n>"),
]
_SPACES = re.compile(r"\s+")


def normalize_message(message: str | None) -> str:
    """The message with request-specific values masked (see the module docs)."""
    if not message:
        return ""
    text = message[:MAX_MESSAGE_CHARS]
    first_line, _, rest = text.partition("\n")
    if rest and first_line.strip():
        text = first_line
    for pattern, replacement in _BEFORE_COLLAPSE:
        text = pattern.sub(replacement, text)
    text = _DIGIT_RUN.sub("0", text)
    for pattern, replacement in _AFTER_COLLAPSE:
        text = pattern.sub(replacement, text)
    return _SPACES.sub(" ", text).strip()
