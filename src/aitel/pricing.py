"""Model prices and the cost of one model call.

A shipped table (``aitel/data/pricing.json``, USD per million tokens) that
users extend or override. A model with no known price costs ``None``, never
``0``: an unknown cost must not look free.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

_PREFIX = re.compile(r"^(?:[a-z0-9_.-]+/)+")
_SUFFIXES = (
    re.compile(r"[-@]\d{4}-?\d{2}-?\d{2}$"),  # -2024-08-06, -20241022, @20240620
    re.compile(r"-(?:latest|preview|exp)$"),
    re.compile(r"-v\d+(?::\d+)?$"),  # bedrock: -v1:0
    re.compile(r"-\d{3,4}$"),  # -0613, -1106
)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_creation: float | None = None
    provider: str | None = None

    def cost(
        self,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cached_prompt_tokens: int | None = None,
        cache_creation_tokens: int | None = None,
    ) -> float | None:
        """Cost of one call; None when token counts are unknown."""
        if prompt_tokens is None and completion_tokens is None:
            return None
        prompt = prompt_tokens or 0
        cached = min(cached_prompt_tokens or 0, prompt) if self.cached_input is not None else 0
        creation = (
            min(cache_creation_tokens or 0, prompt - cached)
            if self.cache_creation is not None
            else 0
        )
        total = (
            (prompt - cached - creation) * self.input
            + cached * (self.cached_input or 0.0)
            + creation * (self.cache_creation or 0.0)
            + (completion_tokens or 0) * self.output
        )
        return round(total / 1_000_000, 10)


def normalize_model_name(name: str) -> str:
    """``openai/gpt-4o-2024-08-06`` -> ``gpt-4o``: lower case, no provider, no date."""
    text = _PREFIX.sub("", name.strip().lower())
    text = text.replace("meta-llama-", "llama-").replace("anthropic.", "")
    previous = None
    while previous != text:
        previous = text
        for pattern in _SUFFIXES:
            text = pattern.sub("", text)
    return text


class PricingTable:
    """Lookup of :class:`ModelPrice` by model name, tolerant of dates and prefixes."""

    def __init__(self, prices: Mapping[str, ModelPrice]) -> None:
        self._prices = {normalize_model_name(k): v for k, v in prices.items()}
        self._by_length = sorted(self._prices, key=len, reverse=True)
        self._cache: dict[str, ModelPrice | None] = {}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping[str, Any]]) -> PricingTable:
        return cls({name: _price(entry) for name, entry in data.items()})

    @classmethod
    def from_file(cls, path: str | Path) -> PricingTable:
        """A table from a JSON file shaped like the shipped one (``{"models": {...}}``)."""
        raw = orjson.loads(Path(path).read_bytes())
        return cls.from_mapping(raw.get("models", raw))

    @classmethod
    def default(cls) -> PricingTable:
        return _default_table()

    def with_overrides(self, prices: Mapping[str, ModelPrice | Mapping[str, Any]]) -> PricingTable:
        """A new table: this one plus (or replaced by) ``prices``."""
        merged = dict(self._prices)
        for name, entry in prices.items():
            merged[normalize_model_name(name)] = (
                entry if isinstance(entry, ModelPrice) else _price(entry)
            )
        return PricingTable(merged)

    def price_for(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        try:
            return self._cache[model]
        except KeyError:
            pass
        key = normalize_model_name(model)
        found = self._prices.get(key)
        if found is None:
            for known in self._by_length:
                if key.startswith((known + "-", known + ":")):
                    found = self._prices[known]
                    break
        if len(self._cache) < 10_000:
            self._cache[model] = found
        return found

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.price_for(model) is not None


def _price(entry: Mapping[str, Any]) -> ModelPrice:
    def optional(key: str) -> float | None:
        value = entry.get(key)
        return None if value is None else float(value)

    return ModelPrice(
        input=float(entry["input"]),
        output=float(entry.get("output", 0.0)),
        cached_input=optional("cached_input"),
        cache_creation=optional("cache_creation"),
        provider=entry.get("provider"),
    )


@lru_cache(maxsize=1)
def _default_table() -> PricingTable:
    raw = orjson.loads(resources.files("aitel").joinpath("data/pricing.json").read_bytes())
    return PricingTable.from_mapping(raw["models"])
