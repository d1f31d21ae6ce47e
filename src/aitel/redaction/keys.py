"""Parameter names that hold credentials."""

from __future__ import annotations

import re

_CREDENTIAL = re.compile(
    r"(?:^|[_\-.])(?:api[_\-]?key|apikey|secret|password|passwd|pwd|authorization|auth[_\-]?token|"
    r"access[_\-]?token|refresh[_\-]?token|bearer|private[_\-]?key|client[_\-]?secret|credentials?|token)$",
    re.IGNORECASE,
)


def is_credential_key(name: str) -> bool:
    """True for names like ``api_key``, ``openai_api_key``, ``Authorization``, ``x-api-key``."""
    return bool(_CREDENTIAL.search(name))
