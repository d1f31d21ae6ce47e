"""Which parameter and field names hold credentials.

``is_credential_key`` decides by the words of a name, so ``api_key``,
``OPENAI_API_KEY``, ``x-api-key``, ``apiKey`` and ``client_secret`` are
credentials while ``max_tokens``, ``token_count``, ``tokens``, ``eos_token``
and ``cache_key`` are not. The packet builder drops such parameters from LLM
invocation parameters whatever the redaction settings; the redactor masks
their values wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

__all__ = ["CREDENTIAL_WORDS", "is_credential_key", "without_credentials"]

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

# Any of these words makes a name a credential (``db_password``, ``client_secret``).
_ALWAYS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "passcode",
        "secret", "secrets", "credential", "credentials", "creds",
        "authorization", "apikey", "apikeys", "cookie", "cookies",
        "jwt", "bearer", "privatekey", "sessionkey", "accesstoken",
    }
)  # fmt: skip

# ``<qualifier>_key`` is a credential (``api_key``, ``secret_key``, ``x-api-key``).
_KEY_QUALIFIERS = frozenset(
    {
        "api", "access", "secret", "private", "auth", "client", "signing", "encryption",
        "master", "subscription", "license", "licence", "hmac", "ssh", "session", "app",
        "account", "service", "admin", "write", "read", "deploy", "webhook", "consumer",
    }
)  # fmt: skip

# ``<word>_token`` with these words is about tokens of text, not credentials.
_TEXT_TOKEN_QUALIFIERS = frozenset(
    {
        "max", "min", "num", "total", "prompt", "completion", "input", "output",
        "reasoning", "cached", "cache", "thinking", "new", "eos", "bos", "pad", "unk",
        "sep", "cls", "mask", "stop", "start", "end", "special", "first", "last",
        "next", "page", "continuation", "pagination", "cursor", "sync", "per", "context",
        "image", "audio", "text", "vocab", "decoder", "generated", "additional", "default",
    }
)  # fmt: skip

# A name ending in one of these words describes a credential, it does not hold one.
_DESCRIPTIVE_SUFFIXES = frozenset(
    {
        "id", "ids", "name", "names", "type", "types", "count", "counts", "limit", "limits",
        "usage", "len", "length", "size", "file", "files", "path", "paths", "env", "var",
        "arn", "ref", "version", "prefix", "expires", "expiry", "expiration", "ttl", "kind",
        "url", "uri", "endpoint", "header", "location", "source", "provider", "mode",
        "required", "enabled", "policy", "rotation", "hint", "set", "present", "state",
        "status", "flag", "flags", "check", "checks", "strength", "format", "field", "fields",
        "label", "prompt", "reset", "changed", "updated", "at", "date", "time", "timeout",
    }
)  # fmt: skip

# A name starting with one of these words is a switch or a question, not a value.
_FLAG_PREFIXES = frozenset(
    {"have", "has", "is", "use", "uses", "enable", "enabled", "disable", "allow", "require",
     "requires", "with", "without", "no", "show", "hide", "needs", "should", "can", "validate"}
)  # fmt: skip


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(name)]


def _minimal(words: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(w for w in words if not any(o != w and o in w for o in words)))


CREDENTIAL_WORDS: tuple[str, ...] = _minimal(_ALWAYS | {"token", "auth", "key"})
"""Every credential name contains one of these, lower-cased (a cheap pre-check)."""


@lru_cache(maxsize=8192)
def is_credential_key(name: str) -> bool:
    """True for names of parameters or fields whose values are credentials."""
    if not isinstance(name, str) or len(name) > 128:
        return False
    words = _words(name)
    if not words:
        return False
    if words[-1] in _DESCRIPTIVE_SUFFIXES or (len(words) > 1 and words[0] in _FLAG_PREFIXES):
        return False
    joined = "".join(words)
    if joined in _ALWAYS or any(w in _ALWAYS for w in words):
        return True
    last = words[-1]
    before = words[-2] if len(words) > 1 else ""
    if last in ("token", "auth"):
        return before not in _TEXT_TOKEN_QUALIFIERS
    if last in ("key", "keys"):
        return before in _KEY_QUALIFIERS or joined.endswith(("apikey", "accesskey"))
    return joined.endswith(("apikey", "accesskey", "secretkey", "authtoken", "accesstoken"))


def without_credentials(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` without credential keys, in nested mappings too.

    Iterative, so arbitrarily deep parameters cannot exhaust the stack.
    """
    result: dict[str, Any] = {}
    stack: list[tuple[Mapping[Any, Any], dict[Any, Any]]] = [(params, result)]
    seen: set[int] = set()
    while stack:
        source, target = stack.pop()
        if id(source) in seen:
            continue
        seen.add(id(source))
        for key, value in list(source.items()):
            if isinstance(key, str) and is_credential_key(key):
                continue
            if isinstance(value, Mapping):
                copy: dict[Any, Any] = {}
                target[key] = copy
                stack.append((value, copy))
            else:
                target[key] = value
    return result
