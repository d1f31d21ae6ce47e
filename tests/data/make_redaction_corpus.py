"""Generate ``redaction_corpus.jsonl``: a labelled corpus for the redaction detectors.

Each line is ``{"text": ..., "spans": [{"start", "end", "kind"}], "group": ...}``:
``group`` is ``"positive"`` (sentences with planted entities, whose sensitive
part is labelled) or ``"negative"`` (look-alikes that must not be redacted:
UUIDs, hashes, version strings, order numbers, Luhn-failing ids, timestamps,
dates, prices, ISBNs, invalid SSNs and octets...). Deterministic: the same
seed always writes the same bytes.

    python tests/data/make_redaction_corpus.py            # (re)write the corpus
    python tests/data/make_redaction_corpus.py --check    # fail if it is stale
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import string
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

SEED = 20240501
POSITIVES_PER_KIND = 220
NEGATIVES = 3000
OUT = Path(__file__).with_name("redaction_corpus.jsonl")

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
UPPER32 = string.ascii_uppercase + "234567"

Fragment = tuple[str, int, int]
"""A text fragment and the span of its sensitive part."""


class Corpus:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)

    # -- helpers --------------------------------------------------------------

    def pick(self, items: list[str] | tuple[str, ...]) -> str:
        return self.rng.choice(items)

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def mixed(self, alphabet: str, n: int) -> str:
        """Random chars that include a digit, a lower and an upper case letter."""
        while True:
            s = self.chars(alphabet, n)
            if (
                any(c.isdigit() for c in s)
                and any(c.islower() for c in s)
                and any(c.isupper() for c in s)
            ):
                return s

    def whole(self, text: str) -> Fragment:
        return text, 0, len(text)

    def tail(self, prefix: str, value: str, suffix: str = "") -> Fragment:
        return prefix + value + suffix, len(prefix), len(prefix) + len(value)

    # -- secrets ----------------------------------------------------------------

    def openai(self) -> Fragment:
        kind = self.rng.random()
        if kind < 0.3:
            body = self.mixed(ALNUM, 20) + "T3BlbkFJ" + self.mixed(ALNUM, 20)
            return self.whole("sk-" + body)
        prefix = self.pick(["proj-", "proj-", "svcacct-", "admin-"])
        return self.whole("sk-" + prefix + self.mixed(URLSAFE, self.rng.randint(48, 156)))

    def anthropic(self) -> Fragment:
        prefix = self.pick(["api03-", "api03-", "admin01-"])
        return self.whole("sk-ant-" + prefix + self.mixed(URLSAFE, 93) + "AA")

    def aws_key_id(self) -> Fragment:
        return self.whole(
            self.pick(["AKIA", "AKIA", "ASIA", "ABIA", "ACCA"]) + self.chars(UPPER32, 16)
        )

    def aws_secret(self) -> Fragment:
        secret = self.mixed(ALNUM + "/+", 40)
        key = self.pick(
            [
                "aws_secret_access_key = ",
                "AWS_SECRET_ACCESS_KEY=",
                '"SecretAccessKey": "',
                "aws_secret_access_key: ",
                "export AWS_SECRET_ACCESS_KEY=",
            ]
        )
        return self.tail(key, secret, '"' if key.endswith('"') else "")

    def github(self) -> Fragment:
        if self.rng.random() < 0.7:
            return self.whole(
                self.pick(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + self.mixed(ALNUM, 36)
            )
        return self.whole("github_pat_" + self.mixed(ALNUM, 22) + "_" + self.mixed(ALNUM, 59))

    def gitlab(self) -> Fragment:
        return self.whole(
            self.pick(["glpat-", "glpat-", "gldt-", "glrt-"]) + self.mixed(URLSAFE, 20)
        )

    def google(self) -> Fragment:
        return self.whole("AIza" + self.mixed(URLSAFE, 35))

    def slack(self) -> Fragment:
        roll = self.rng.random()
        if roll < 0.6:
            prefix = self.pick(["xoxb-", "xoxp-", "xoxa-", "xoxs-", "xoxr-"])
            body = "-".join(
                [
                    self.chars(string.digits, 12),
                    self.chars(string.digits, 13),
                    self.mixed(ALNUM, 24),
                ]
            )
            return self.whole(prefix + body)
        if roll < 0.8:
            return self.whole(
                f"xapp-1-A{self.chars(UPPER32, 10)}-{self.chars(string.digits, 13)}-"
                + self.chars("0123456789abcdef", 64)
            )
        path = f"T{self.chars(UPPER32, 8)}/B{self.chars(UPPER32, 10)}/{self.mixed(ALNUM, 24)}"
        return self.tail("https://hooks.slack.com/services/", path)

    def stripe(self) -> Fragment:
        prefix = self.pick(["sk_live_", "sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"])
        return self.whole(prefix + self.mixed(ALNUM, self.rng.choice([24, 32, 99])))

    def huggingface(self) -> Fragment:
        return self.whole("hf_" + self.mixed(string.ascii_letters + string.digits, 34))

    def npm(self) -> Fragment:
        return self.whole("npm_" + self.mixed(ALNUM, 36))

    def pypi(self) -> Fragment:
        return self.whole("pypi-AgEIcHlwaS5vcmc" + self.mixed(URLSAFE, self.rng.randint(60, 150)))

    def sendgrid(self) -> Fragment:
        return self.whole("SG." + self.mixed(URLSAFE, 22) + "." + self.mixed(URLSAFE, 43))

    def jwt(self) -> Fragment:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = {"alg": self.pick(["HS256", "RS256", "ES256"]), "typ": "JWT"}
        payload = {
            "sub": str(self.rng.randint(10**6, 10**9)),
            "name": self.pick(["svc-reporting", "ingest", "admin", "worker-7"]),
            "iat": self.rng.randint(1_600_000_000, 1_800_000_000),
        }
        signature = bytes(self.rng.getrandbits(8) for _ in range(32))
        token = ".".join(
            [
                b64(json.dumps(header, separators=(",", ":")).encode()),
                b64(json.dumps(payload, separators=(",", ":")).encode()),
                b64(signature),
            ]
        )
        return self.whole(token)

    def private_key(self) -> Fragment:
        label = self.pick(["EC ", "EC ", "OPENSSH ", "", "RSA ", "ENCRYPTED "])
        lines = {"EC ": 3, "OPENSSH ": 5, "": 4, "RSA ": 12, "ENCRYPTED ": 4}[label]
        body = [self.chars(ALNUM + "+/", 64) for _ in range(lines)]
        body.append(self.chars(ALNUM + "+/", self.rng.randint(8, 60)) + "==")
        newline = self.pick(["\n", "\n", "\\n"])
        block = newline.join(
            [f"-----BEGIN {label}PRIVATE KEY-----", *body, f"-----END {label}PRIVATE KEY-----"]
        )
        return self.whole(block)

    def bearer(self) -> Fragment:
        token = self.mixed(ALNUM + "-._~", self.rng.randint(24, 64))
        prefix = self.pick(
            ["Authorization: Bearer ", "authorization: bearer ", "-H 'Authorization: Bearer "]
        )
        return self.tail(
            prefix, token, "'" if prefix.endswith("Bearer ") and prefix.startswith("-H") else ""
        )

    def basic(self) -> Fragment:
        user = self.pick(["admin", "deploy", "svc_reports", "jenkins", "alice"])
        password = self.mixed(ALNUM + "!#%", self.rng.randint(8, 20))
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return self.tail("Authorization: Basic ", token)

    def url_credentials(self) -> Fragment:
        scheme = self.pick(
            ["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp", "https", "ftp"]
        )
        user = self.pick(["admin", "app_user", "readonly", "svc-ingest", "root", ""])
        password = self.mixed(ALNUM + "!$%^*_-", self.rng.randint(8, 24))
        host = self.pick(
            [
                "db.internal.example.com",
                "cache.prod.example.net",
                "cluster0.ab1cd.mongodb.net",
                "localhost",
            ]
        )
        port = self.pick(["", ":5432", ":3306", ":6379", ":5672"])
        prefix = f"{scheme}://"
        secret = f"{user}:{password}"
        return self.tail(
            prefix, secret, f"@{host}{port}/{self.pick(['app', 'prod', 'orders', ''])}"
        )

    def credential(self) -> Fragment:
        value = self.mixed(ALNUM + "!@#%^*_-", self.rng.randint(8, 28)).replace("@", "#")
        form = self.rng.randrange(16)
        if form == 0:
            return self.tail("password=", value)
        if form == 1:
            return self.tail('DB_PASSWORD="', value, '"')
        if form == 2:
            return self.tail('"api_key": "', value, '"')
        if form == 3:
            return self.tail("x-api-key: ", value)
        if form == 4:
            return self.tail("client_secret=", value)
        if form == 5:
            return self.tail("passwd: ", value)
        if form == 6:
            return self.tail("my password is ", value)
        if form == 7:
            return self.tail("secret = '", value, "'")
        if form == 8:
            return self.tail("ANTHROPIC_API_KEY=", value)
        if form == 9:
            return self.tail('"access_token": "', value, '"')
        if form == 10:
            return self.tail("refresh_token=", value)
        if form == 11:
            return self.tail("Server=db01;Uid=sa;Pwd=", value, ";")
        if form == 12:
            return self.tail(
                "GET https://api.example.com/v2/report?format=csv&api_key=", value, "&page=2"
            )
        if form == 13:
            return self.tail('{\\"password\\": \\"', value, '\\"}')
        if form == 14:
            return self.tail("auth_token: ", value)
        return self.tail("PASSWORD: '", value, "'")

    # -- personal data ----------------------------------------------------------

    FIRST = (
        "alice",
        "bob",
        "carol",
        "dmitri",
        "eve",
        "fatima",
        "gao",
        "hana",
        "ivan",
        "jose",
        "kenji",
        "lena",
        "marta",
        "nia",
        "omar",
        "priya",
    )
    LAST = (
        "smith",
        "jones",
        "garcia",
        "muller",
        "dubois",
        "rossi",
        "kowalski",
        "tanaka",
        "okafor",
        "silva",
        "nguyen",
        "haddad",
    )
    DOMAINS = (
        "example.com",
        "example.org",
        "mail.example.co.uk",
        "corp.example.de",
        "uni.example.edu",
        "example.io",
        "sub.example.com.au",
    )

    def email(self) -> Fragment:
        first, last = self.pick(self.FIRST), self.pick(self.LAST)
        local = self.pick(
            [
                f"{first}.{last}",
                f"{first}_{last}{self.rng.randint(1, 99)}",
                f"{first[0]}{last}",
                f"{first}+{self.pick(['news', 'billing', 'test'])}",
                f"{first.capitalize()}.{last.capitalize()}",
                f"{first}-{last}",
                f"{first.upper()}.{last.upper()}",
                f"{first}{self.rng.randint(1970, 2005)}",
            ]
        )
        domain = self.pick(self.DOMAINS)
        if self.rng.random() < 0.15:
            domain = domain.upper()
        return self.whole(f"{local}@{domain}")

    def _nanp(self) -> tuple[str, str, str]:
        area = f"{self.rng.randint(2, 9)}{self.rng.randint(0, 9)}{self.rng.randint(0, 9)}"
        exchange = f"{self.rng.randint(2, 9)}{self.rng.randint(0, 9)}{self.rng.randint(0, 9)}"
        return area, exchange, f"{self.rng.randint(0, 9999):04d}"

    def phone(self) -> Fragment:
        a, e, n = self._nanp()
        d = lambda k: self.chars(string.digits, k)
        nz = lambda: str(self.rng.randint(1, 9))
        forms: list[Callable[[], str]] = [
            lambda: f"+1 {a} {e} {n}",
            lambda: f"+1 ({a}) {e}-{n}",
            lambda: f"+1{a}{e}{n}",
            lambda: f"({a}) {e}-{n}",
            lambda: f"{a}-{e}-{n}",
            lambda: f"{a}.{e}.{n}",
            lambda: f"1-800-{e}-{n}",
            lambda: f"+44 20 {nz()}{d(3)} {d(4)}",
            lambda: f"+44 7{d(3)} {d(6)}",
            lambda: f"+49-30-{nz()}{d(6)}",
            lambda: f"+49 151 {nz()}{d(7)}",
            lambda: f"+33 {nz()} {d(2)} {d(2)} {d(2)} {d(2)}",
            lambda: f"+91 {self.rng.randint(6, 9)}{d(4)} {d(5)}",
            lambda: f"+81 3-{d(4)}-{d(4)}",
            lambda: f"+61 2 {nz()}{d(3)} {d(4)}",
            lambda: f"+55 11 9{d(4)}-{d(4)}",
            lambda: f"020 {nz()}{d(3)} {d(4)}",
            lambda: f"07700 {nz()}{d(5)}",
            lambda: f"030 {nz()}{d(6)}",
            lambda: f"0151 {nz()}{d(7)}",
            lambda: f"01 {d(2)} {d(2)} {d(2)} {d(2)}",
            lambda: f"(02) {nz()}{d(3)} {d(4)}",
            lambda: f"0412 {d(3)} {d(3)}",
            lambda: f"+1-{a}-{e}-{n}",
            lambda: f"+1.{a}.{e}.{n}",
            lambda: f"{a} {e} {n}",
            lambda: f"+44 (0)20 {nz()}{d(3)} {d(4)}",
            lambda: f"+353 1 {nz()}{d(2)} {d(4)}",
            lambda: f"+34 {self.rng.randint(6, 9)}{d(2)} {d(3)} {d(3)}",
        ]
        return self.whole(self.rng.choice(forms)())

    @staticmethod
    def luhn_digit(partial: str) -> str:
        total = 0
        for i, c in enumerate(reversed(partial)):
            v = int(c)
            if i % 2 == 0:
                v *= 2
                if v > 9:
                    v -= 9
            total += v
        return str((10 - total % 10) % 10)

    def card_number(self) -> tuple[str, list[int]]:
        brand = self.rng.randrange(9)
        if brand <= 1:
            prefix, length, groups = "4", 16, [4, 4, 4, 4]
        elif brand == 2:
            prefix, length, groups = str(self.rng.randint(51, 55)), 16, [4, 4, 4, 4]
        elif brand == 3:
            prefix, length, groups = str(self.rng.randint(2221, 2720)), 16, [4, 4, 4, 4]
        elif brand == 4:
            prefix, length, groups = self.pick(["34", "37"]), 15, [4, 6, 5]
        elif brand == 5:
            prefix, length, groups = self.pick(["6011", "65"]), 16, [4, 4, 4, 4]
        elif brand == 6:
            prefix, length, groups = str(self.rng.randint(3528, 3589)), 16, [4, 4, 4, 4]
        elif brand == 7:
            prefix, length, groups = "4", 19, [4, 4, 4, 4, 3]
        else:
            prefix, length, groups = self.pick(["36", "38", "300", "305"]), 14, [4, 6, 4]
        partial = prefix + self.chars(string.digits, length - len(prefix) - 1)
        return partial + self.luhn_digit(partial), groups

    def credit_card(self) -> Fragment:
        number, groups = self.card_number()
        separator = self.pick([" ", " ", "-", ""])
        parts, i = [], 0
        for g in groups:
            parts.append(number[i : i + g])
            i += g
        return self.whole(separator.join(parts))

    IBAN_FORMATS = {
        "DE": "8n10n", "GB": "4a6n8n", "FR": "5n5n11c2n", "ES": "4n4n2n10n", "IT": "1a5n5n12c",
        "NL": "4a10n", "BE": "3n7n2n", "CH": "5n12c", "AT": "5n11n", "PL": "8n16n", "SE": "3n16n1n",
        "IE": "4a6n8n", "PT": "4n4n11n2n", "DK": "4n9n1n", "NO": "4n6n1n", "FI": "3n11n",
    }  # fmt: skip

    def iban(self) -> Fragment:
        country = self.pick(list(self.IBAN_FORMATS))
        spec, bban, number = self.IBAN_FORMATS[country], "", ""
        for ch in spec:
            if ch.isdigit():
                number += ch
                continue
            alphabet = {
                "n": string.digits,
                "a": string.ascii_uppercase,
                "c": string.ascii_uppercase + string.digits,
            }[ch]
            bban += self.chars(alphabet, int(number))
            number = ""
        numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
        check = 98 - int(numeric) % 97
        compact = f"{country}{check:02d}{bban}"
        if self.rng.random() < 0.6:
            return self.whole(" ".join(compact[i : i + 4] for i in range(0, len(compact), 4)))
        return self.whole(compact)

    def ssn(self) -> Fragment:
        while True:
            area = self.rng.randint(1, 899)
            if area != 666:
                break
        digits = f"{area:03d}{self.rng.randint(1, 99):02d}{self.rng.randint(1, 9999):04d}"
        form = self.rng.randrange(4)
        if form <= 1:
            return self.whole(f"{digits[:3]}-{digits[3:5]}-{digits[5:]}")
        if form == 2:
            return self.whole(f"{digits[:3]} {digits[3:5]} {digits[5:]}")
        return self.tail(self.pick(["SSN: ", "SSN ", "social security number "]), digits)

    def ip(self) -> Fragment:
        if self.rng.random() < 0.6:
            octets = [self.rng.randint(1, 223)] + [self.rng.randint(0, 255) for _ in range(3)]
            address = ".".join(map(str, octets))
            suffix = self.pick(["", "", "", f":{self.rng.randint(1, 65535)}", "/24", "/32"])
            return self.tail("", address, suffix)
        groups = [f"{self.rng.randint(0, 0xFFFF):x}" for _ in range(8)]
        form = self.rng.randrange(5)
        if form == 4:
            return self.tail(
                "[", f"2001:db8::{groups[0]}:{groups[1]}", f"]:{self.rng.randint(1, 65535)}"
            )
        if form == 0:
            return self.whole(":".join(groups))
        if form == 1:
            return self.whole(f"2001:db8:{groups[0]}::{groups[1]}")
        if form == 2:
            return self.whole(f"fe80::{groups[0]}:{groups[1]}:{groups[2]}:{groups[3]}")
        return self.whole(f"::ffff:192.0.2.{self.rng.randint(1, 254)}")

    # -- sentences --------------------------------------------------------------

    SECRET_TEMPLATES = (
        "Set the key to {} before running the ingest job.",
        "config loaded: {}",
        "Here is my key {} - why does the request fail with 401?",
        "DEBUG request headers include {} for tenant 42",
        "The deploy log printed {} in plain text.",
        "{}",
        "please rotate {} asap, it was pasted in the channel",
        "env dump:\n{}\nend of env",
        '<tool_call>{{"credentials": "{}"}}</tool_call>',
    )
    PII_TEMPLATES = (
        "Please contact me at {} about my order.",
        "Customer record: {} (verified yesterday)",
        "The caller left {} as the callback detail.",
        "{}",
        "Send the invoice to {}, thanks!",
        "User provided {} in the signup form.",
        "| 2024-03-01 | {} | active |",
        "Note from support: {}.",
    )
    LABELS = {
        "email": ("email", "e-mail", "contact"),
        "phone": ("phone", "mobile", "tel", "call me on"),
        "credit_card": ("card", "card number", "paid with", "cc"),
        "iban": ("IBAN", "account", "bank details", "wire to"),
        "us_ssn": ("SSN", "social", "tax id", "ssn #"),
        "ip_address": ("IP", "client ip", "from host", "remote addr"),
    }

    def positive(self, kind: str, make: Callable[[], Fragment], pii: bool) -> dict[str, object]:
        fragment, start, end = make()
        if pii and kind in self.LABELS and self.rng.random() < 0.5:
            label = self.pick(self.LABELS[kind])
            sep = self.pick([": ", " ", " = "]) if not label.endswith("to") else " "
            fragment, start, end = (
                label + sep + fragment,
                start + len(label) + len(sep),
                end + len(label) + len(sep),
            )
        template = self.pick(self.PII_TEMPLATES if pii else self.SECRET_TEMPLATES)
        if "tool_call" in template and ('"' in fragment or "\n" in fragment):
            template = "{}"
        offset = template.index("{}") - template[: template.index("{}")].count("{{")
        text = template.format(fragment)
        spans = [{"start": offset + start, "end": offset + end, "kind": kind}]
        return {"text": text, "spans": spans, "group": "positive"}

    def negative(self) -> str:
        r = self.rng
        luhn_fail = self._luhn_failing_id()
        nonsense_version = (
            f"{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)}.{r.randint(0, 9)}"
        )
        bad_ssn = self.pick(
            [
                f"000-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
                f"666-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
                f"9{r.randint(10, 99)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
                f"{r.randint(100, 665)}-00-{r.randint(1000, 9999)}",
                f"{r.randint(100, 665)}-{r.randint(10, 99)}-0000",
            ]
        )
        choices: list[Callable[[], str]] = [
            lambda: f"request {uuid.UUID(int=r.getrandbits(128), version=4)} completed",
            lambda: f"trace_id={uuid.UUID(int=r.getrandbits(128), version=4).hex} span ok",
            lambda: f"ID {str(uuid.UUID(int=r.getrandbits(128), version=4)).upper()} queued",
            lambda: f"commit {hashlib.sha1(str(r.random()).encode()).hexdigest()} merged",
            lambda: f"fixed in {hashlib.sha1(str(r.random()).encode()).hexdigest()[:7]}",
            lambda: f"sha256:{hashlib.sha256(str(r.random()).encode()).hexdigest()}",
            lambda: f"md5 {hashlib.md5(str(r.random()).encode()).hexdigest()} matches",
            lambda: f"Order #{r.randint(100000, 99999999)} shipped",
            lambda: f"order number {r.randint(10**8, 10**10)} is delayed",
            lambda: f"Invoice INV-{r.randint(2019, 2025)}-{r.randint(1, 99999):05d} paid",
            lambda: f"version {nonsense_version} released",
            lambda: f"upgrade to v{nonsense_version} now",
            lambda: f"numpy=={r.randint(1, 2)}.{r.randint(0, 26)}.{r.randint(0, 9)}",
            lambda: (
                f"Mozilla/5.0 Chrome/120.0.{r.randint(1000, 6999)}.{r.randint(10, 299)} Safari/537.36"
            ),
            lambda: f"Python 3.{r.randint(8, 13)}.{r.randint(0, 12)} on linux",
            lambda: f"tracking id {luhn_fail} not found",
            lambda: f"account ref {luhn_fail}",
            lambda: (
                f"{r.randint(2000, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999999):06d}Z event"
            ),
            lambda: (
                f"at {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d} the job ran"
            ),
            lambda: f"epoch {r.randint(1_600_000_000_000, 1_900_000_000_000)} ms",
            lambda: f"due {r.randint(1, 12):02d}/{r.randint(1, 28):02d}/{r.randint(2000, 2030)}",
            lambda: (
                f"am {r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(2000, 2030)} geliefert"
            ),
            lambda: f"total ${r.randint(1, 999)},{r.randint(0, 999):03d}.{r.randint(0, 99):02d}",
            lambda: f"price EUR {r.randint(1, 9999)}.{r.randint(0, 99):02d} incl. VAT",
            lambda: (
                f"revenue {r.randint(1, 999)},{r.randint(0, 999):03d},{r.randint(0, 999):03d} units"
            ),
            lambda: (
                f"ISBN 978-{r.randint(0, 9)}-{r.randint(10, 99)}-{r.randint(100000, 999999)}-{r.randint(0, 9)}"
            ),
            lambda: f"ISBN 0-{r.randint(100, 999)}-{r.randint(10000, 99999)}-{r.randint(0, 9)}",
            lambda: f"ssn field was {bad_ssn} which is invalid",
            lambda: (
                f"host {r.randint(256, 999)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)} is bogus"
            ),
            lambda: f"OID 1.3.6.1.4.1.{r.randint(1, 99999)}",
            lambda: f"MAC {':'.join(f'{r.randint(0, 255):02X}' for _ in range(6))}",
            lambda: f"color #{r.randint(0, 0xFFFFFF):06x} on hover",
            lambda: f"max_tokens={r.randint(16, 4096)}, temperature=0.{r.randint(0, 9)}",
            lambda: f"token_count: {r.randint(10, 99999)} tokens used",
            lambda: (
                f"The key point is that the password reset link expires in {r.randint(2, 48)} hours."
            ),
            lambda: "The secret to good retrieval is chunking; the token budget matters too.",
            lambda: "Install scikit-learn and the task-force-handbook-generator tooling.",
            lambda: "call hf_hub_download(repo_id, filename) to fetch weights",
            lambda: (
                f"model gpt-4o-{r.randint(2024, 2025)}-0{r.randint(1, 9)}-{r.randint(10, 28)} answered"
            ),
            lambda: "claude-3-5-sonnet-20241022 and text-embedding-3-small",
            lambda: f"coordinates {r.uniform(-90, 90):.4f}, {r.uniform(-180, 180):.4f}",
            lambda: f"HTTP/1.1 {self.pick(['200 OK', '404 Not Found', '503 Service Unavailable'])}",
            lambda: (
                f"see section {r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)} of the manual"
            ),
            lambda: f"room {r.randint(100, 999)}, ext. {r.randint(1000, 9999)}",
            lambda: f"zip {r.randint(10000, 99999)}",
            lambda: f"/usr/local/lib/python3.{r.randint(8, 13)}/site-packages/aitel",
            lambda: f"{r.randint(1, 100)}% of {r.randint(1000, 9999)} requests",
            lambda: (
                f"batch {r.randint(1, 999)} of {r.randint(1000, 9999)}: {r.randint(10**12, 10**13)} bytes"
            ),
            lambda: f"phone field empty; ticket JIRA-{r.randint(100, 9999)}",
            lambda: f"authorization: pending review by {self.pick(self.FIRST).capitalize()}",
            lambda: "token: the smallest unit of text the model reads",
            lambda: f"mention @{self.pick(self.FIRST)} in the thread",
            lambda: (
                f"image {base64.b64encode(bytes(r.getrandbits(8) for _ in range(48))).decode()}"
            ),
            lambda: "api_key: str = Field(default=None, description='the provider key')",
            lambda: "password: Optional[str] = None",
            lambda: 'client = OpenAI(api_key=os.environ["OPENAI_API_KEY"])',
            lambda: "llm = ChatOpenAI(api_key=settings.openai_api_key, max_tokens=512)",
            lambda: "def login(username, password=password, token=token):",
            lambda: "token_type=bearer&expires_in=3600",
            lambda: f"sort_key=name, cache_key=user:{r.randint(1, 9999)}, primary_key=True",
            lambda: '{"token": "Hello", "logprob": -0.0123, "bytes": [72, 101]}',
            lambda: "Bearer authentication is an HTTP authentication scheme.",
            lambda: "Authorization: Bearer <token>",
            lambda: "curl -H 'Authorization: Bearer $TOKEN' https://api.example.com",
            lambda: "password_reset_url=https://example.com/reset",
            lambda: "the secret_name is prod-db and the key_file is /etc/ssl/key.pem",
            lambda: (
                "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----"
            ),
            lambda: (
                "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEa1b2c3d4e5f6g7h8i9j0k1l2m3n4\n-----END PUBLIC KEY-----"
            ),
            lambda: f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQC{self.chars(ALNUM, 40)} user@laptop",
            lambda: "risk-assessment-quarterly-report-final and desk-lamp-model-2024",
            lambda: "ghost_protocol_enabled, xoxo from the team, hf_transfer installed",
            lambda: "std::vector<int> and crate::module::Type and a::b",
            lambda: (
                f"at {r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999):03d} latency spiked"
            ),
            lambda: "ratio 16:9, John 3:16, localhost:8080",
            lambda: f"pi is 3.{r.randint(10**13, 10**14)} roughly",
            lambda: (
                f"values 0.{r.randint(1000, 9999)} 0.{r.randint(1000, 9999)} 0.{r.randint(1000, 9999)}"
            ),
            lambda: (
                f"population 1 {r.randint(100, 999)} {r.randint(100, 999)} {r.randint(100, 999)}"
            ),
            lambda: (
                f"ref {r.choice('789')}{self.chars(string.digits, 3)}-{self.chars(string.digits, 4)}-{self.chars(string.digits, 4)}-{self.chars(string.digits, 4)}"
            ),
            lambda: "call 911 or dial 112; the code is 1-2-3-4",
            lambda: "The SSN is required; see the phone policy.",
        ]
        return self.rng.choice(choices)()

    def _luhn_failing_id(self) -> str:
        while True:
            digits = str(self.rng.randint(2, 6)) + self.chars(
                string.digits, self.rng.randint(12, 18)
            )
            check = self.luhn_digit(digits[:-1])
            if digits[-1] != check:
                return digits

    def generate(self) -> list[dict[str, object]]:
        secret_kinds: dict[str, Callable[[], Fragment]] = {
            "openai_api_key": self.openai,
            "anthropic_api_key": self.anthropic,
            "aws_access_key_id": self.aws_key_id,
            "aws_secret_access_key": self.aws_secret,
            "github_token": self.github,
            "gitlab_token": self.gitlab,
            "google_api_key": self.google,
            "slack_token": self.slack,
            "stripe_key": self.stripe,
            "huggingface_token": self.huggingface,
            "npm_token": self.npm,
            "pypi_token": self.pypi,
            "sendgrid_api_key": self.sendgrid,
            "jwt": self.jwt,
            "private_key": self.private_key,
            "bearer_token": self.bearer,
            "basic_auth": self.basic,
            "url_credentials": self.url_credentials,
            "credential": self.credential,
        }
        pii_kinds: dict[str, Callable[[], Fragment]] = {
            "email": self.email,
            "phone": self.phone,
            "credit_card": self.credit_card,
            "iban": self.iban,
            "us_ssn": self.ssn,
            "ip_address": self.ip,
        }
        rows: list[dict[str, object]] = []
        for kind, make in secret_kinds.items():
            count = POSITIVES_PER_KIND // 2 if kind == "private_key" else POSITIVES_PER_KIND
            rows.extend(self.positive(kind, make, pii=False) for _ in range(count))
        for kind, make in pii_kinds.items():
            rows.extend(self.positive(kind, make, pii=True) for _ in range(POSITIVES_PER_KIND))
        rows.extend(
            {"text": self.negative(), "spans": [], "group": "negative"} for _ in range(NEGATIVES)
        )
        # Mixed lines: a positive followed by a hard negative in the same text.
        for _ in range(POSITIVES_PER_KIND):
            kind, make = self.rng.choice(list(pii_kinds.items()))
            row = self.positive(kind, make, pii=True)
            row["text"] = f"{row['text']} {self.negative()}"
            rows.append(row)
        self.rng.shuffle(rows)
        return rows


def render(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the corpus file is stale")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render(Corpus().generate())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()):,} bytes, {text.count(chr(10)):,} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
