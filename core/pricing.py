"""The price catalog and the cost calculator: pure functions over plain data, in micro-USD."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from core.money import MICROS_PER_USD, ceil_micros, usd_to_micros
from core.types import Usage

CATALOG_PATH = Path(__file__).parent / "prices" / "catalog.toml"
UNITS = (
    "gpu_hour",
    "image",
    "input_token",
    "output_token",
    "audio_second",
    "video_second",
    "character",
    "request",
)


@dataclass(frozen=True)
class PriceEntry:
    """One price: `micros` per `unit` of `model` on `provider`, from `effective_from`."""

    provider: str
    model: str
    unit: str
    micros: int
    effective_from: date
    source: str = ""

    def matches(self, provider: str, model: str) -> bool:
        return self.provider == provider and self.model in ("*", model)


def load_catalog(path: Path = CATALOG_PATH, local_gpu_hourly_usd: str | None = None) -> list[PriceEntry]:
    """The catalog's entries; an operator's hourly GPU rate replaces local gpu_hour prices."""
    data = tomllib.loads(path.read_text())
    entries = []
    for raw in data.get("price", []):
        unit = raw["unit"]
        if unit not in UNITS:
            raise ValueError(f"unknown price unit {unit!r} in {path}")
        usd = raw["usd"]
        if unit == "gpu_hour" and local_gpu_hourly_usd is not None:
            usd = local_gpu_hourly_usd
        entries.append(
            PriceEntry(
                provider=raw["provider"],
                model=raw["model"],
                unit=unit,
                micros=usd_to_micros(usd),
                effective_from=date.fromisoformat(str(raw["effective_from"])),
                source=raw.get("source", ""),
            )
        )
    return entries


def prices_in_force(catalog: list[PriceEntry], provider: str, model: str, on: date) -> list[PriceEntry]:
    """The entries that price `model` on `on`: per unit, the newest effective one, exact model first."""
    chosen: dict[str, PriceEntry] = {}
    for entry in catalog:
        if not entry.matches(provider, model) or entry.effective_from > on:
            continue
        current = chosen.get(entry.unit)
        if current is None or _precedence(entry) > _precedence(current):
            chosen[entry.unit] = entry
    return [chosen[u] for u in UNITS if u in chosen]


def _precedence(entry: PriceEntry) -> tuple[bool, date]:
    return (entry.model != "*", entry.effective_from)


def cost_of(entries: list[PriceEntry], usage: Usage) -> int | None:
    """What `usage` costs under `entries`, rounded up to a whole micro-USD; None when unpriced."""
    if not entries:
        return None
    quantities = {
        "gpu_hour": Decimal(str(usage.gpu_seconds)) / 3600,
        "image": Decimal(usage.images),
        "input_token": Decimal(usage.input_tokens),
        "output_token": Decimal(usage.output_tokens),
        "audio_second": Decimal(str(usage.audio_seconds)),
        "video_second": Decimal(str(usage.video_seconds)),
        "character": Decimal(usage.characters),
        "request": Decimal(usage.requests),
    }
    total = sum((quantities[e.unit] * e.micros for e in entries), Decimal(0))
    return ceil_micros(total)


def describe_price(entries: list[PriceEntry]) -> str:
    """Prices for people: '$0.60 per GPU hour'; 'unpriced' when none is in force."""
    if not entries:
        return "unpriced"
    parts = []
    for e in entries:
        usd = Decimal(e.micros) / MICROS_PER_USD
        parts.append(f"${usd.normalize():f} per {e.unit.replace('_', ' ').replace('gpu', 'GPU')}")
    return ", ".join(parts)
