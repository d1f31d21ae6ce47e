"""Checks behind the detectors: checksums, validators and span finders.

Validators take a regex match and say whether it is a real entity (a Luhn or
mod-97 checksum, SSN area rules, an IPv6 parse, "looks random, not a word").
Finders are for entities a single regex cannot find fast or exactly: they
take ``(text, lowered)`` and yield ``(start, end)`` spans.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterator

from aitel.redaction.keys import is_credential_key

_FLAGS = re.ASCII


def is_ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def lower_same_length(text: str) -> str:
    """``text.lower()`` when that keeps offsets, else ASCII-only lower-casing."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return text.translate(_ASCII_LOWER)


# --- validators -------------------------------------------------------------

_CLASSES = (str.islower, str.isupper, str.isdigit)


def _varied(token: str) -> bool:
    """At least two of lower case, upper case and digits: random, not a word."""
    seen = 0
    for char_class in _CLASSES:
        if any(char_class(c) for c in token):
            seen += 1
    return seen >= 2


def varied_match(match: re.Match[str]) -> bool:
    return _varied(match.group("body"))


_WORDY = re.compile(r"[A-Za-z]+(?:[_\-][A-Za-z]+)*\.?", _FLAGS)


def _credential_like(value: str) -> bool:
    """A value that looks like a credential rather than a word or a name.

    ``hunter2``, ``Tr0ub4dor&3``, ``s3cr3t!`` and long values are; ``the``,
    ``required``, ``old_state``, ``EOF`` and short numbers are not.
    """
    if len(value) < 3:
        return False
    if value.isdigit():
        return len(value) >= 6
    if len(value) >= 16:
        return True
    if _WORDY.fullmatch(value):
        return any(c.isupper() for c in value[1:]) and any(c.islower() for c in value)
    return any(c.isdigit() for c in value) or any(not c.isalnum() and c not in "_-." for c in value)


def bearer(match: re.Match[str]) -> bool:
    token = match.group("secret")
    return not (token.isalpha() and (token.islower() or token.istitle()))


def basic(match: re.Match[str]) -> bool:
    token = match.group("secret")
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


_VERSION_BEFORE = re.compile(
    r"(?:(?<![a-z])(?:v|ver|version|release|build|rev|section|sections|chapter|clause|rfc)"
    r"\.?|[=~<>!]=|[a-z]/|\u00a7)[\s:=_\"'(]*\Z",
    re.IGNORECASE,
)


def ipv4(match: re.Match[str]) -> bool:
    """A dotted quad is an address unless a version or section marker precedes it."""
    before = match.string[max(0, match.start() - 16) : match.start()]
    return _VERSION_BEFORE.search(before) is None


def _digit_count(text: str) -> int:
    return sum(c.isdigit() for c in text)


_SIGNED_DECIMAL = re.compile(r"\+[0-9]+\.[0-9]+", _FLAGS)


def phone_intl(match: re.Match[str]) -> bool:
    number = match.group()
    return 8 <= _digit_count(number) <= 15 and _SIGNED_DECIMAL.fullmatch(number) is None


def phone_nanp(match: re.Match[str]) -> bool:
    digits = [c for c in match.group() if c.isdigit()]
    if len(digits) == 11:
        digits = digits[1:]
    return len(digits) == 10 and digits[0] not in "01" and digits[3] not in "01"


_SSN_SHAPE = re.compile(r"[0-9]{3}([ \-])[0-9]{2}\1[0-9]{4}", _FLAGS)


def phone_trunk(match: re.Match[str]) -> bool:
    number = match.group()
    return 9 <= _digit_count(number) <= 12 and _SSN_SHAPE.fullmatch(number) is None


def _ssn_parts_valid(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


def ssn(match: re.Match[str]) -> bool:
    digits = "".join(c for c in match.group("secret") if c.isdigit())
    return len(digits) == 9 and _ssn_parts_valid(digits)


# --- finders ----------------------------------------------------------------

_CARD_CANDIDATE = re.compile(r"[2-6][0-9]{3}(?:[ \-]?[0-9]){9,15}", _FLAGS)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum used by payment card numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_issuer(digits: str, grouped: bool) -> bool:
    """A known issuer prefix with a length that issuer uses.

    Thirteen-digit Visa numbers are long retired; a bare 13-digit number is
    far more often an id or a millisecond timestamp, so only a grouped one
    (``4222 2222 2222 2``) counts.
    """
    n = len(digits)
    two = int(digits[:2])
    four = int(digits[:4])
    if digits[0] == "4":
        return n in (16, 19) or (n == 13 and grouped)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19
    if two in {50, 62} or 56 <= two <= 69:
        return 16 <= n <= 19
    return False


def _card_ok(chunk: str) -> bool:
    digits = chunk.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19:
        return False
    separators = {c for c in chunk if c in " -"}
    if len(separators) > 1:
        return False
    groups = [chunk]
    if separators:
        groups = chunk.split(separators.pop())
        if len(groups[0]) != 4 or any(len(g) > 6 or len(g) < 3 for g in groups[1:-1]):
            return False
    return luhn_valid(digits) and _card_issuer(digits, bool(separators) or len(groups) > 1)


def _is_boundary_before(text: str, index: int) -> bool:
    """Not inside a word, a decimal number or a longer run of digit groups."""
    if index == 0:
        return True
    prev = text[index - 1]
    if prev.isalnum() or prev in "_-":
        return False
    return not (prev in "., " and index >= 2 and text[index - 2].isdigit())


def _is_boundary_after(text: str, index: int) -> bool:
    if index >= len(text):
        return True
    nxt = text[index]
    if nxt.isalnum() or nxt in "_-":
        return False
    return not (nxt in ".," and index + 1 < len(text) and text[index + 1].isdigit())


def find_cards(text: str, _lowered: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    pos = lo
    while True:
        match = _CARD_CANDIDATE.search(text, pos, hi)
        if match is None:
            return
        start, end = match.span()
        pos = end
        if not _is_boundary_before(text, start):
            continue
        chunk = match.group()
        # A greedy candidate may run into a following number: try shorter
        # prefixes that end at a digit followed by a boundary.
        for cut in range(len(chunk), 12, -1):
            if not chunk[cut - 1].isdigit() or not _is_boundary_after(text, start + cut):
                continue
            if _card_ok(chunk[:cut]):
                yield start, start + cut
                break


IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

_IBAN_START = re.compile(r"[0-9]{2}(?<=[A-Z]{2}[0-9]{2})", _FLAGS)


def iban_valid(compact: str) -> bool:
    """Country length and ISO 7064 mod-97 checksum of an IBAN without spaces."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def find_ibans(text: str, _lowered: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    for match in _IBAN_START.finditer(text, lo, hi):
        start = match.start() - 2
        if start > 0 and text[start - 1].isalnum():
            continue
        length = IBAN_LENGTHS.get(text[start : start + 2])
        if length is None:
            continue
        chars: list[str] = []
        index = start
        limit = min(len(text), start + length + length // 4 + 2)
        while index < limit and len(chars) < length:
            char = text[index]
            if char.isascii() and (char.isdigit() or char.isupper()):
                chars.append(char)
            elif char != " " or not chars or index + 1 >= len(text) or text[index + 1] == " ":
                break
            index += 1
        if len(chars) != length:
            continue
        if index < len(text) and text[index].isascii() and text[index].isalnum():
            continue
        if iban_valid("".join(chars)):
            yield start, index


_EMAIL_LOCAL_TAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}\Z", _FLAGS)
_EMAIL_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])",
    _FLAGS,
)
_EMAIL_LOCAL_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
)


def find_emails(text: str, _lowered: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    at = text.find("@", lo, hi)
    while at != -1:
        window_start = max(0, at - 64)
        local = _EMAIL_LOCAL_TAIL.search(text, window_start, at)
        domain = _EMAIL_DOMAIN.match(text, at + 1) if local else None
        if local is not None and domain is not None:
            start = local.start()
            while start > window_start and text[start - 1] in _EMAIL_LOCAL_CHARS:
                start -= 1
            yield start, domain.end()
            at = text.find("@", domain.end(), hi)
        else:
            at = text.find("@", at + 1, hi)


# Credential assignments: ``OPENAI_API_KEY=...``, ``"password": "..."``,
# ``x-api-key: ...``, escaped JSON ``{\"api_key\": \"...\"}``. Anchored on a
# keyword (fast literal search in the lower-cased text); the key name around
# it must pass ``is_credential_key``.
CREDENTIAL_KEYWORDS = ("key", "token", "secret", "pass", "pwd", "auth", "credential", "cookie")
_KEYWORD_TO_SEPARATOR = {
    keyword: re.compile(
        re.escape(keyword) + r"[a-z0-9_.\-]{0,40}(\\?[\"']?)[ \t]{0,3}([:=])", _FLAGS
    )
    for keyword in CREDENTIAL_KEYWORDS
}
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_VALUE = re.compile(
    r"[ \t]{0,3}(?:(?:bearer|basic|token|digest)[ \t]+)?"
    r"(?:\\\"(?P<edq>[^\"\\\r\n]{1,512})\\\""
    r"|\"(?P<dq>[^\"\r\n]{1,512})\"|'(?P<sq>[^'\r\n]{1,512})'"
    r"|(?P<bare>[^\s\"'`,;&<>{}\[\]()]{1,512}))",
    _FLAGS | re.IGNORECASE,
)
_VALUE_GROUPS = ("edq", "dq", "sq", "bare")
_NOT_A_VALUE = frozenset(
    {"none", "null", "nil", "undefined", "true", "false", "***", "<redacted>", "bearer", "basic",
     "token", "digest", "yes", "no", "on", "off"}
)  # fmt: skip
_DOTTED_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+){2,}", _FLAGS)
# Code and templates, not values: ``settings.api_key``, ``os.environ[...]``,
# ``$TOKEN``, ``password=password``.
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+", _FLAGS)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", _FLAGS)
_SHELL_VARIABLE = re.compile(r"\$(?:[A-Z_][A-Z0-9_]*|\{.*)", _FLAGS)
# Format strings and templates: ``%s``, ``%(name)s``, ``{0}``, ``{{ var }}``, ``${X}``.
_PLACEHOLDER = re.compile(
    r"(?:%(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-#0 +]*[0-9.]*[sdrifxXeEgGc]"
    r"|\{[^{}]*\}|\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*|[\s:/@.,;\-])+",
    _FLAGS,
)


def _is_reference(text: str, value: str, end: int) -> bool:
    """A bare value that names something (code, a variable) instead of being a secret."""
    if end < len(text) and text[end] in "([":
        return True
    if _SHELL_VARIABLE.fullmatch(value) or _DOTTED_NAME.fullmatch(value):
        return True
    return _NAME.fullmatch(value) is not None and is_credential_key(value)


def assignment_finder(keyword: str) -> Callable[[str, str, int, int], Iterator[tuple[int, int]]]:
    """A finder for credential assignments whose key contains ``keyword``."""
    separator_after = _KEYWORD_TO_SEPARATOR[keyword]

    def find(text: str, lowered: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        for match in separator_after.finditer(lowered, lo, hi):
            span = _assignment_value(text, lowered, match)
            if span is not None:
                yield span

    return find


def _assignment_value(text: str, lowered: str, match: re.Match[str]) -> tuple[int, int] | None:
    """The span of the value assigned after a keyword-and-separator match, if a credential."""
    separator = match.start(2)
    after = lowered[separator + 1 : separator + 2]
    before = lowered[separator - 1 : separator] if separator else ""
    if after == "=" or (match.group(2) == "=" and before in ("=", "!", "<", ">")):
        return None  # a comparison, not an assignment
    key_end = match.start(1) if match.group(1) else match.start(2)
    while key_end > match.start() and lowered[key_end - 1] in " \t":
        key_end -= 1
    key_start = match.start()
    floor = max(0, key_start - 64)
    while key_start > floor and lowered[key_start - 1] in _KEY_CHARS:
        key_start -= 1
    key = text[key_start:key_end]
    if not is_credential_key(key):
        return None
    value = _VALUE.match(text, separator + 1)
    if value is None:
        return None
    group = next(g for g in _VALUE_GROUPS if value.group(g))
    secret = value.group(group)
    if len(secret) < 3 or secret.strip().lower() in _NOT_A_VALUE:
        return None
    if secret[0] in "<,;)]}" or _PLACEHOLDER.fullmatch(secret):
        return None
    if _DOTTED_NUMBER.fullmatch(secret):
        return None
    bare = group == "bare"
    if bare and _is_reference(text, secret, value.end(group)):
        return None
    if bare and secret.lower() == key.lower().rsplit(".", 1)[-1]:
        return None  # ``self.token = token``
    spaced = text[separator + 1 : separator + 2] in (" ", "\t")
    loose = bare and (match.group(2) == ":" or spaced) and not match.group(1)
    if (loose or key.lower() == "token") and not _credential_like(secret):
        return None
    return value.span(group)


_PASSWORD_PHRASE = re.compile(r"pass(?:word|code|phrase)[ \t]+(?:is|was)[ \t]+:?[ \t]*", _FLAGS)
_PHRASE_VALUE = re.compile(
    r"[\"']?(?P<secret>[^\s\"']{3,128}?)[\"']?(?=[.,;!?)]*(?:\s|\Z))", _FLAGS
)


def find_password_phrases(text: str, lowered: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """``my password is hunter2`` (natural language, one line)."""
    for match in _PASSWORD_PHRASE.finditer(lowered, lo, hi):
        if match.start() and lowered[match.start() - 1].isalnum():
            continue
        value = _PHRASE_VALUE.match(text, match.end())
        if value is not None and _credential_like(value.group("secret")):
            yield value.span("secret")


_HEX = frozenset("0123456789abcdefABCDEF")
_V6_ANCHOR = re.compile(r":[0-9A-Fa-f]{0,4}:", _FLAGS)
_V6_BODY = re.compile(r"[0-9A-Fa-f:]{2,45}(?:\.[0-9]{1,3}){0,3}(?:%[0-9A-Za-z]{1,15})?", _FLAGS)


def find_ipv6(text: str, _lowered: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """IPv6 addresses, anchored on ``:hex:`` and confirmed by ``ipaddress``."""
    pos = lo
    while True:
        anchor = _V6_ANCHOR.search(text, pos, hi)
        if anchor is None:
            return
        start = anchor.start()
        floor = max(0, start - 4)
        while start > floor and text[start - 1] in _HEX:
            start -= 1
        body = _V6_BODY.match(text, start)
        end = body.end() if body is not None else anchor.end()
        pos = max(end, anchor.end())
        if start and (text[start - 1].isalnum() or text[start - 1] in "_:."):
            continue
        if end < len(text) and (text[end].isalnum() or text[end] in "_:"):
            continue
        if ipv6_text(text[start:end]):
            yield start, end


def ipv6_text(candidate: str) -> bool:
    """A valid IPv6 address with at least four hex digits (``::1`` is no one's data)."""
    address = candidate.split("%", 1)[0]
    if sum(c in _HEX for c in address) < 4:
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# A run of at least 7 digits and separators, or two digits after two capitals
# (an IBAN's country code and check digits).
_NUMBER_RUN = re.compile(r"[0-9](?:[0-9 .\-()/+]{6,}|[0-9](?<=[A-Z]{2}[0-9]{2}))", _FLAGS)


Window = tuple[int, int, int, int, bool]
"""``(lo, hi, digits, dots, head)``: a stretch of text, how many digits and dots it
holds, and whether two capital letters lead it (as an IBAN's country code does)."""
_DIGITS_ONLY = dict.fromkeys(range(ord("0"), ord("9") + 1))
"""``str.translate`` table that deletes digits."""


def digit_windows(text: str) -> list[Window]:
    """Where a number-shaped entity (card, phone, SSN, IBAN, IPv4) can be.

    One pass finds the runs of digits and separators long enough to hold such
    an entity (or an IBAN's check digits after its country code); each run,
    widened a little for a leading ``+``/``(`` and for look-arounds, is a window.
    """
    size = len(text)
    windows: list[Window] = []
    for match in _NUMBER_RUN.finditer(text):
        start = match.start()
        run = match.group()
        digits = len(run) - len(run.translate(_DIGITS_ONLY))
        head = start >= 2 and text[start - 1] in _UPPER and text[start - 2] in _UPPER
        windows.append(
            (max(0, start - 4), min(size, match.end() + 2), digits, run.count("."), head)
        )
    return windows
