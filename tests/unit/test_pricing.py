"""The price catalog and calculator: units, effective dates, exact-model precedence, rounding."""

from __future__ import annotations

from datetime import date

from core.pricing import PriceEntry, cost_of, describe_price, load_catalog, prices_in_force
from core.types import Usage


def _entry(model: str, unit: str, micros: int, since: str) -> PriceEntry:
    return PriceEntry("openai", model, unit, micros, date.fromisoformat(since))


def test_catalog_prices_local_gpu_time_by_the_hour() -> None:
    [entry] = prices_in_force(load_catalog(), "diffusers", "anything", date(2026, 6, 1))
    assert entry.unit == "gpu_hour"
    assert entry.micros == 600_000
    assert entry.source


def test_operator_hourly_rate_replaces_the_catalog_figure() -> None:
    [entry] = prices_in_force(load_catalog(local_gpu_hourly_usd="1.20"), "diffusers", "x", date(2026, 6, 1))
    assert entry.micros == 1_200_000


def test_one_hour_of_gpu_costs_the_hourly_rate_and_fractions_round_up() -> None:
    entries = prices_in_force(load_catalog(), "diffusers", "x", date(2026, 6, 1))
    assert cost_of(entries, Usage(gpu_seconds=3600)) == 600_000
    assert cost_of(entries, Usage(gpu_seconds=1)) == 167  # 166.67 rounded up


def test_newest_effective_price_wins_and_future_prices_wait() -> None:
    catalog = [
        _entry("*", "image", 40_000, "2025-01-01"),
        _entry("*", "image", 30_000, "2026-01-01"),
        _entry("*", "image", 10_000, "2027-01-01"),
    ]
    [entry] = prices_in_force(catalog, "openai", "gpt-image-1", date(2026, 6, 1))
    assert entry.micros == 30_000


def test_exact_model_price_beats_the_provider_wildcard() -> None:
    catalog = [_entry("*", "image", 40_000, "2026-01-01"), _entry("dall-e-3", "image", 80_000, "2025-01-01")]
    [entry] = prices_in_force(catalog, "openai", "dall-e-3", date(2026, 6, 1))
    assert entry.micros == 80_000


def test_token_prices_add_up_per_unit() -> None:
    catalog = [_entry("*", "input_token", 2, "2026-01-01"), _entry("*", "output_token", 8, "2026-01-01")]
    entries = prices_in_force(catalog, "openai", "gpt", date(2026, 6, 1))
    assert cost_of(entries, Usage(input_tokens=1000, output_tokens=500)) == 6_000


def test_no_price_is_unpriced_never_zero() -> None:
    assert cost_of([], Usage(images=1)) is None
    assert describe_price([]) == "unpriced"
    assert prices_in_force(load_catalog(), "nobody", "x", date(2026, 6, 1)) == []


def test_prices_read_for_people() -> None:
    entries = prices_in_force(load_catalog(), "diffusers", "x", date(2026, 6, 1))
    assert describe_price(entries) == "$0.60 per GPU hour"


def test_openai_images_are_priced_by_size_and_quality() -> None:
    catalog = load_catalog()
    on = date(2026, 6, 1)
    medium = prices_in_force(catalog, "openai", "gpt-image-1", on, {"size": "1024x1024", "quality": "medium"})
    high_wide = prices_in_force(
        catalog, "openai", "gpt-image-1", on, {"size": "1536x1024", "quality": "high"}
    )
    assert cost_of(medium, Usage(images=1)) == 42_000
    assert cost_of(high_wide, Usage(images=1)) == 250_000
    assert prices_in_force(catalog, "openai", "gpt-image-1", on, {"size": "999x1"}) == []


def test_token_prices_are_published_per_million_and_totals_round_up() -> None:
    entries = prices_in_force(load_catalog(), "openai", "gpt-4o-mini", date(2026, 6, 1))
    # 1,000 input tokens at $0.15/M = 150 µ$; 333 output tokens at $0.60/M = 199.8 µ$ → 350 µ$.
    assert cost_of(entries, Usage(input_tokens=1000, output_tokens=333)) == 350
    assert describe_price(entries) == "$0.15 per 1M input tokens, $0.60 per 1M output tokens"


def test_every_catalog_entry_names_its_source() -> None:
    assert all(entry.source for entry in load_catalog())
