"""Cost from the shipped price table; unknown models cost null."""

from __future__ import annotations

import pytest

from aitel.pricing import ModelPrice, PricingTable, normalize_model_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("models/gemini-1.5-pro", "gemini-1.5-pro"),
        ("mistral-large-latest", "mistral-large"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("gpt-4-0613", "gpt-4"),
    ],
)
def test_names_are_normalised(name: str, expected: str) -> None:
    assert normalize_model_name(name) == expected


def test_known_models_of_each_provider_have_prices() -> None:
    table = PricingTable.default()
    for model in (
        "gpt-4o-2024-08-06",
        "claude-3-5-haiku-20241022",
        "gemini-2.0-flash",
        "mistral-small-latest",
        "meta-llama/llama-3.1-8b-instruct",
    ):
        assert table.price_for(model) is not None, model


def test_prefix_match_respects_boundaries() -> None:
    table = PricingTable.default()
    assert table.price_for("gpt-4o-mini-2024-07-18") == table.price_for("gpt-4o-mini")
    assert table.price_for("gpt-4o-mini") != table.price_for("gpt-4o")
    assert table.price_for("gpt-4oxyz") is None


def test_unknown_model_has_no_price() -> None:
    assert PricingTable.default().price_for("my-finetune") is None
    assert PricingTable.default().price_for(None) is None


def test_cost_with_cache() -> None:
    price = ModelPrice(input=2.5, output=10.0, cached_input=1.25)
    assert price.cost(1000, 100, cached_prompt_tokens=600) == pytest.approx(
        (400 * 2.5 + 600 * 1.25 + 100 * 10) / 1e6
    )
    assert price.cost(None, None) is None


def test_overrides_and_files(tmp_path) -> None:
    table = PricingTable.default().with_overrides({"my-finetune": {"input": 1.0, "output": 2.0}})
    assert table.price_for("my-finetune-v2").output == 2.0
    path = tmp_path / "prices.json"
    path.write_text('{"models": {"gpt-4o": {"input": 100, "output": 200}}}')
    assert PricingTable.from_file(path).price_for("gpt-4o").input == 100
