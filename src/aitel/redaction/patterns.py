"""What the redactor looks for: entity kinds and their detectors, as data.

Each :class:`Detector` names the kind it finds, the category it belongs to
(``"secret"`` or ``"pii"``), its replacement and how to find it: a compiled
regular expression (optionally with a validator and a named ``secret`` group
when only part of the match is sensitive) or a finder function for entities
that need code (checksums, anchored look-backs).

Speed comes from ``needles``: substrings one of which every match contains
(``sk-``, ``ghp_``, ``://``; keywords in the lower-cased text). The engine
(:mod:`aitel.redaction._engine`) finds which needles a text holds in a few
cheap scans and runs only the detectors they trigger. Number-shaped entities
(cards, phones, SSNs, IBANs, IPv4) are ``windowed`` instead: one pass finds
the runs of digits that could hold one, and their patterns run inside those
runs only. Patterns start with their literal; word boundaries are checked in
code (``word_start``), since a leading look-behind makes the regex engine
try every position.

Documented decisions:

* A dotted quad with valid octets (``10.1.2.3``) is an IPv4 address unless a
  version or section marker directly precedes it (``v1.2.3.4``,
  ``version 1.2.3.4``, ``__version__ = "1.2.3.4"``, ``release``/``build``,
  ``==1.2.3.4``, ``Chrome/1.2.3.4``, ``section 8.2.4.4``, ``§ 1.2.3.4``).
  IPv6 candidates must parse with :mod:`ipaddress` and hold four hex digits.
* Credential assignments (``password=...``, ``"api_key": "..."``) mask the
  value only, and only when the key passes :func:`is_credential_key`; code
  that names rather than holds a value is left alone (``api_key=settings.key``,
  ``password=password``, ``token: %s``, ``x == token``).
* Phone numbers need a ``+`` country code, a North American ``(415) 555-2671``
  shape, or a trunk ``0`` with separated groups (``020 7946 0958``); bare runs
  of digits are never phone numbers (they are ids far more often).
* A US SSN needs separators (``123-45-6789``) unless an ``SSN``/``social
  security`` label precedes nine bare digits.
* Payment cards: 13-19 digits, known issuer prefix, Luhn checksum.
* IBANs: known country, that country's length, ISO 7064 mod-97 checksum.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from aitel.redaction._checks import (
    CREDENTIAL_KEYWORDS,
    Window,
    assignment_finder,
    basic,
    bearer,
    digit_windows,
    find_cards,
    find_emails,
    find_ibans,
    find_ipv6,
    find_password_phrases,
    iban_valid,
    ipv4,
    is_ascii_alnum,
    lower_same_length,
    luhn_valid,
    phone_intl,
    phone_nanp,
    phone_trunk,
    ssn,
    varied_match,
)

__all__ = [
    "DETECTORS",
    "KINDS",
    "PII_DETECTORS",
    "PII_KINDS",
    "SECRET_DETECTORS",
    "SECRET_KINDS",
    "Detector",
    "Finding",
    "Recognizer",
    "Window",
    "custom_detector",
    "digit_windows",
    "iban_valid",
    "lower_same_length",
    "luhn_valid",
]

SECRET = "secret"
PII = "pii"
CUSTOM = "custom"
CATEGORIES = frozenset({SECRET, PII, CUSTOM})

# Kinds, as counted in ``processing.redactions``.
OPENAI_API_KEY = "openai_api_key"
ANTHROPIC_API_KEY = "anthropic_api_key"
AWS_ACCESS_KEY_ID = "aws_access_key_id"
AWS_SECRET_ACCESS_KEY = "aws_secret_access_key"
GITHUB_TOKEN = "github_token"
GITLAB_TOKEN = "gitlab_token"
GOOGLE_API_KEY = "google_api_key"
SLACK_TOKEN = "slack_token"
STRIPE_KEY = "stripe_key"
HUGGINGFACE_TOKEN = "huggingface_token"
NPM_TOKEN = "npm_token"
PYPI_TOKEN = "pypi_token"
SENDGRID_API_KEY = "sendgrid_api_key"
JWT = "jwt"
PRIVATE_KEY = "private_key"
BEARER_TOKEN = "bearer_token"
BASIC_AUTH = "basic_auth"
URL_CREDENTIALS = "url_credentials"
CREDENTIAL = "credential"

EMAIL = "email"
PHONE = "phone"
CREDIT_CARD = "credit_card"
IBAN = "iban"
US_SSN = "us_ssn"
IP_ADDRESS = "ip_address"

HIDDEN = "hidden"
REDACTION_FAILED = "redaction_failed"

HIDDEN_MARKER = "<HIDDEN>"
FAILED_MARKER = "<REDACTION_FAILED>"
CREDENTIAL_MARKER = "<SECRET:credential>"

_FLAGS = re.ASCII


class Finding(NamedTuple):
    """One sensitive span of a text: ``text[start:end]`` becomes ``replacement``."""

    start: int
    end: int
    kind: str
    replacement: str


@runtime_checkable
class Recognizer(Protocol):
    """Anything that finds sensitive spans in a text (an extension point)."""

    def find(self, text: str) -> Iterator[Finding]: ...


Finder = Callable[[str, str, int, int], Iterator[tuple[int, int]]]
"""``finder(text, lowered, lo, hi) -> (start, end)`` spans starting in ``text[lo:hi]``;
``lowered`` is ``text`` lower-cased (same length) or ``""`` when not asked for."""

Validator = Callable[[re.Match[str]], bool]


@dataclass(frozen=True, slots=True)
class Detector:
    """How to find one kind of entity.

    Exactly one of ``pattern`` and ``finder`` is set. With a pattern, the
    ``secret`` group (when present and matched) is the part replaced, so
    ``password=hunter2`` keeps ``password=``.

    ``needles``: every match contains one of them (in the lower-cased text
    when ``lowered``), so the detector runs only when one occurs. A detector
    without needles and not ``windowed`` runs on every text. A ``windowed``
    detector runs inside :func:`digit_windows` that hold at least
    ``min_digits`` digits and ``min_dots`` dots (and ``window_char``, if set;
    and two leading capitals, if ``window_head``).
    """

    kind: str
    category: str
    replacement: str
    pattern: re.Pattern[str] | None = None
    finder: Finder | None = None
    validate: Validator | None = None
    needles: tuple[str, ...] = ()
    lowered: bool = False
    word_start: bool = False
    windowed: bool = False
    min_digits: int = 0
    min_dots: int = 0
    window_char: str = ""
    window_head: bool = False
    min_len: int = 1

    def spans(
        self,
        text: str,
        lowered: str = "",
        windows: list[Window] | None = None,
    ) -> Iterator[tuple[int, int]]:
        """Spans of ``text`` this detector redacts (needles not checked).

        A ``windowed`` detector only looks inside ``windows`` (by default
        :func:`digit_windows`: the runs of digits that can hold a number).
        """
        if self.lowered and not lowered:
            lowered = lower_same_length(text)
        if not self.windowed:
            yield from self._spans_in(text, lowered, 0, len(text))
            return
        for lo, hi, digits, dots, head in digit_windows(text) if windows is None else windows:
            if digits < self.min_digits or dots < self.min_dots or (self.window_head and not head):
                continue
            if self.window_char and text.find(self.window_char, lo, hi) < 0:
                continue
            yield from self._spans_in(text, lowered, lo, hi)

    def _spans_in(self, text: str, lowered: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        if self.finder is not None:
            yield from self.finder(text, lowered, lo, hi)
            return
        if self.pattern is None:
            return
        validate = self.validate
        word_start = self.word_start
        for match in self.pattern.finditer(text, lo, hi):
            if word_start and match.start() and is_ascii_alnum(text[match.start() - 1]):
                continue
            if validate is not None and not validate(match):
                continue
            if "secret" in self.pattern.groupindex and match.start("secret") >= 0:
                start, end = match.span("secret")
            else:
                start, end = match.span()
            if end > start:
                yield start, end

    def find(self, text: str) -> Iterator[Finding]:
        """Findings of this detector alone in ``text``."""
        for start, end in self.spans(text):
            yield Finding(start, end, self.kind, self.replacement)


def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, _FLAGS | flags)


def _token(
    kind: str,
    provider: str,
    pattern: str,
    needles: tuple[str, ...],
    min_len: int,
    validate: Validator | None = None,
) -> Detector:
    """A provider token: starts with a literal prefix, not inside a longer word."""
    return Detector(
        kind=kind,
        category=SECRET,
        replacement=f"<SECRET:{provider}>",
        pattern=_compile(pattern),
        validate=validate,
        needles=needles,
        word_start=True,
        min_len=min_len,
    )


SECRET_DETECTORS: tuple[Detector, ...] = (
    Detector(
        kind=PRIVATE_KEY,
        category=SECRET,
        replacement="<SECRET:private_key>",
        needles=("-----BEGIN",),
        pattern=_compile(
            r"-----BEGIN[ A-Z0-9]{0,20}PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]*?-----END[ A-Z0-9]{0,20}PRIVATE KEY(?: BLOCK)?-----"
            r"|[A-Za-z0-9+/=\s\\:,.\-]*)"
        ),
        min_len=30,
    ),
    Detector(
        kind=URL_CREDENTIALS,
        category=SECRET,
        replacement="<SECRET:url_credentials>",
        needles=("://",),
        pattern=_compile(r"://(?P<secret>[^\s/?#@:\"'<>\[\]]*:[^\s/?#\"'<>]+)@(?=[A-Za-z0-9\[])"),
        min_len=8,
    ),
    _token(ANTHROPIC_API_KEY, "anthropic", r"sk-ant-[A-Za-z0-9_\-]{20,}", ("sk-ant-",), 27),
    _token(
        OPENAI_API_KEY,
        "openai",
        r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?(?P<body>[A-Za-z0-9_\-]{20,})",
        ("sk-",),
        23,
        varied_match,
    ),
    _token(
        AWS_ACCESS_KEY_ID,
        "aws",
        r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])",
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        20,
    ),
    Detector(
        kind=AWS_SECRET_ACCESS_KEY,
        category=SECRET,
        replacement="<SECRET:aws>",
        pattern=_compile(
            r"(?:aws_?)?secret_?access_?key[\"']?\s{0,3}[:=]\s{0,3}[\"']?"
            r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
            re.IGNORECASE,
        ),
        needles=("secret",),
        lowered=True,
        min_len=50,
    ),
    _token(
        GITHUB_TOKEN,
        "github",
        r"gh[pousr]_[A-Za-z0-9]{30,255}",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        34,
    ),
    _token(GITHUB_TOKEN, "github", r"github_pat_[A-Za-z0-9_]{30,255}", ("github_pat_",), 41),
    _token(
        GITLAB_TOKEN,
        "gitlab",
        r"gl(?:pat|ptt|dt|rt|soat|cbt|ft|imt|oas)-[A-Za-z0-9_\-]{20,}",
        ("glpat-", "glptt-", "gldt-", "glrt-", "glsoat-", "glcbt-", "glft-", "glimt-", "gloas-"),
        25,
    ),
    _token(GOOGLE_API_KEY, "google", r"AIza[0-9A-Za-z_\-]{35,}", ("AIza",), 39),
    _token(
        SLACK_TOKEN,
        "slack",
        r"xox[abposr]-(?P<body>[A-Za-z0-9\-]{10,})",
        ("xox",),
        15,
        varied_match,
    ),
    _token(SLACK_TOKEN, "slack", r"xapp-[0-9]-[A-Za-z0-9\-]{20,}", ("xapp-",), 25),
    Detector(
        kind=SLACK_TOKEN,
        category=SECRET,
        replacement="<SECRET:slack>",
        needles=("hooks.slack.com/",),
        pattern=_compile(
            r"hooks\.slack\.com/(?:services|workflows)/(?P<secret>[A-Za-z0-9_/\-]{20,})"
        ),
        min_len=40,
    ),
    _token(
        STRIPE_KEY, "stripe", r"sk_(?:live|test)_[A-Za-z0-9]{16,}", ("sk_live_", "sk_test_"), 24
    ),
    _token(
        STRIPE_KEY, "stripe", r"rk_(?:live|test)_[A-Za-z0-9]{16,}", ("rk_live_", "rk_test_"), 24
    ),
    _token(STRIPE_KEY, "stripe", r"whsec_[A-Za-z0-9]{24,}", ("whsec_",), 30),
    _token(
        HUGGINGFACE_TOKEN,
        "huggingface",
        r"hf_(?P<body>[A-Za-z0-9]{30,})",
        ("hf_",),
        33,
        varied_match,
    ),
    _token(NPM_TOKEN, "npm", r"npm_[A-Za-z0-9]{36,}", ("npm_",), 40),
    _token(PYPI_TOKEN, "pypi", r"pypi-AgE[A-Za-z0-9_\-]{40,}", ("pypi-AgE",), 48),
    _token(
        SENDGRID_API_KEY, "sendgrid", r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}", ("SG.",), 68
    ),
    _token(
        JWT, "jwt", r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", ("eyJ",), 30
    ),
    Detector(
        kind=BEARER_TOKEN,
        category=SECRET,
        replacement="<SECRET:bearer>",
        pattern=_compile(r"[Bb]earer[ \t]+(?P<secret>[A-Za-z0-9._~+/\-]{8,}=*)"),
        validate=bearer,
        needles=("Bearer", "bearer", "BEARER"),
        word_start=True,
        min_len=15,
    ),
    Detector(
        kind=BASIC_AUTH,
        category=SECRET,
        replacement="<SECRET:basic_auth>",
        pattern=_compile(r"Basic[ \t]+(?P<secret>[A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])"),
        validate=basic,
        needles=("Basic",),
        word_start=True,
        min_len=12,
    ),
    *(
        Detector(
            kind=CREDENTIAL,
            category=SECRET,
            replacement=CREDENTIAL_MARKER,
            finder=assignment_finder(keyword),
            needles=(keyword,),
            lowered=True,
            min_len=len(keyword) + 2,
        )
        for keyword in CREDENTIAL_KEYWORDS
    ),
    Detector(
        kind=CREDENTIAL,
        category=SECRET,
        replacement=CREDENTIAL_MARKER,
        finder=find_password_phrases,
        needles=("pass",),
        lowered=True,
        min_len=10,
    ),
)

PII_DETECTORS: tuple[Detector, ...] = (
    Detector(
        kind=EMAIL,
        category=PII,
        replacement="<EMAIL>",
        finder=find_emails,
        needles=("@",),
        min_len=6,
    ),
    Detector(
        kind=IBAN,
        category=PII,
        replacement="<IBAN>",
        finder=find_ibans,
        windowed=True,
        min_digits=2,
        window_head=True,
        min_len=15,
    ),
    Detector(
        kind=CREDIT_CARD,
        category=PII,
        replacement="<CREDIT_CARD>",
        finder=find_cards,
        windowed=True,
        min_digits=13,
        min_len=13,
    ),
    Detector(
        kind=US_SSN,
        category=PII,
        replacement="<US_SSN>",
        pattern=_compile(
            r"(?<![\w\-.])(?P<secret>[0-9]{3}(?P<sep>[\- ])[0-9]{2}(?P=sep)[0-9]{4})"
            r"(?![\w\-]|\.[0-9])"
        ),
        validate=ssn,
        windowed=True,
        min_digits=9,
        min_len=11,
    ),
    Detector(
        kind=US_SSN,
        category=PII,
        replacement="<US_SSN>",
        pattern=_compile(
            r"\b(?:ssn|social security(?: number| no\.?| #)?)\s{0,3}(?:#|no\.?|number)?"
            r"\s{0,3}[:=]?\s{0,3}(?P<secret>[0-9]{9})(?![\w\-])",
            re.IGNORECASE,
        ),
        validate=ssn,
        needles=("ssn", "social security"),
        lowered=True,
        min_len=12,
    ),
    Detector(
        kind=PHONE,
        category=PII,
        replacement="<PHONE>",
        pattern=_compile(
            r"\+(?<![\w+]\+)[1-9][0-9]{0,2}(?:[ .\-]?\([0-9]{1,4}\))?"
            r"(?:[ .\-]?[0-9]{1,5}){1,6}(?![\w\-:]|\.[0-9])"
        ),
        validate=phone_intl,
        windowed=True,
        min_digits=8,
        window_char="+",
        min_len=9,
    ),
    Detector(
        kind=PHONE,
        category=PII,
        replacement="<PHONE>",
        pattern=_compile(
            r"(?<![\w+\-.(/])(?:1[ .\-]?)?(?:\([0-9]{3}\)[ ]?|[0-9]{3}[ .\-])"
            r"[0-9]{3}[ .\-][0-9]{4}(?![\w\-:]|\.[0-9])"
        ),
        validate=phone_nanp,
        windowed=True,
        min_digits=10,
        min_len=12,
    ),
    Detector(
        kind=PHONE,
        category=PII,
        replacement="<PHONE>",
        pattern=_compile(
            r"(?<![\w+\-.(/:])(?:\(0[0-9]{1,4}\)|0[0-9]{1,4})(?:[ \-.][0-9]{2,8}){1,4}"
            r"(?![\w\-:/]|[.,][0-9])"
        ),
        validate=phone_trunk,
        windowed=True,
        min_digits=9,
        window_char="0",
        min_len=10,
    ),
    Detector(
        kind=IP_ADDRESS,
        category=PII,
        replacement="<IP_ADDRESS>",
        finder=find_ipv6,
        needles=(":",),
        min_len=6,
    ),
    Detector(
        kind=IP_ADDRESS,
        category=PII,
        replacement="<IP_ADDRESS>",
        pattern=_compile(
            r"(?<![\w.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}"
            r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![\w]|\.[0-9])"
        ),
        validate=ipv4,
        windowed=True,
        min_digits=4,
        min_dots=3,
        min_len=7,
    ),
)  # fmt: skip

DETECTORS: tuple[Detector, ...] = SECRET_DETECTORS + PII_DETECTORS
"""Built-in detectors, highest priority first (an earlier detector wins an overlap)."""

SECRET_KINDS = frozenset(d.kind for d in SECRET_DETECTORS)
PII_KINDS = frozenset(d.kind for d in PII_DETECTORS)
KINDS = SECRET_KINDS | PII_KINDS


def custom_detector(name: str, pattern: str | re.Pattern[str]) -> Detector:
    """A detector for a user pattern; a ``secret`` group limits what is replaced."""
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    return Detector(
        kind=name,
        category=CUSTOM,
        replacement=f"<{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_').upper() or 'REDACTED'}>",
        pattern=compiled,
    )
