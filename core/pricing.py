"""The price catalog and the cost calculator: pure functions over plain data, in micro-USD.

A catalog entry prices one unit of one provider's model (or every model, `model = "*"`), from
an `effective_from` date, optionally only `when` some request parameters have given values
(OpenAI prices an image by size and quality). Unit prices may be fractions of a micro-USD (a
token costs 0.15 µ$); a call's total is rounded up to a whole micro-USD, so we never undercharge.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.money import MICROS_PER_USD, ceil_micros
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
# Units whose catalog figure is given per million, as vendors publish them.
PER_MILLION = {"input_token", "output_token", "character"}


@dataclass(frozen=True)
class PriceEntry:
    """One price: `micros` (may be fractional) per `unit` of `model` on `provider`."""

    provider: str
    model: str
    unit: str
    micros: Decimal
    effective_from: date
    when: tuple[tuple[str, str], ...] = ()
    source: str = ""
    note: str = field(default="", compare=False)

    def matches(self, provider: str, model: str, params: dict[str, Any]) -> bool:
        return (
            self.provider == provider
            and self.model in ("*", model)
            and all(str(params.get(k)) == v for k, v in self.when)
        )


def load_catalog(path: Path = CATALOG_PATH, local_gpu_hourly_usd: str | None = None) -> list[PriceEntry]:
    """The catalog's entries; an operator's hourly GPU rate replaces local gpu_hour prices."""
    return parse_catalog(path.read_text(), str(path), local_gpu_hourly_usd)


def parse_catalog(
    text: str, origin: str = "catalog", local_gpu_hourly_usd: str | None = None
) -> list[PriceEntry]:
    """Entries from catalog TOML text; ValueError naming the entry when one is malformed."""
    data = tomllib.loads(text)
    entries = []
    for number, raw in enumerate(data.get("price", []), start=1):
        try:
            unit = raw["unit"]
            if unit not in UNITS:
                raise ValueError(f"unknown unit {unit!r}")
            if unit in PER_MILLION:
                usd = Decimal(str(raw["usd_per_million"])) / 1_000_000
            else:
                usd = Decimal(str(raw["usd"]))
            if unit == "gpu_hour" and local_gpu_hourly_usd is not None and raw.get("local", False):
                usd = Decimal(local_gpu_hourly_usd)
            if not usd.is_finite() or usd < 0:
                raise ValueError("price must be a non-negative number")
            entries.append(
                PriceEntry(
                    provider=raw["provider"],
                    model=raw["model"],
                    unit=unit,
                    micros=usd * MICROS_PER_USD,
                    effective_from=date.fromisoformat(str(raw["effective_from"])),
                    when=tuple(sorted((k, str(v)) for k, v in raw.get("when", {}).items())),
                    source=raw.get("source", ""),
                    note=raw.get("note", ""),
                )
            )
        except (KeyError, ValueError, InvalidOperation) as exc:
            raise ValueError(f"{origin}: price entry {number} is malformed ({exc})") from exc
    return entries


def prices_in_force(
    catalog: list[PriceEntry],
    provider: str,
    model: str,
    on: date,
    params: dict[str, Any] | None = None,
) -> list[PriceEntry]:
    """Per unit, the entry that prices this call on `on`: exact model, then most specific, then newest."""
    params = params or {}
    chosen: dict[str, PriceEntry] = {}
    for entry in catalog:
        if not entry.matches(provider, model, params) or entry.effective_from > on:
            continue
        current = chosen.get(entry.unit)
        if current is None or _precedence(entry) > _precedence(current):
            chosen[entry.unit] = entry
    return [chosen[u] for u in UNITS if u in chosen]


def _precedence(entry: PriceEntry) -> tuple[bool, int, date]:
    return (entry.model != "*", len(entry.when), entry.effective_from)


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
        usd = e.micros / MICROS_PER_USD
        if e.unit in PER_MILLION:
            label = "1M " + e.unit.replace("_", " ") + "s"
            usd *= 1_000_000
        else:
            label = e.unit.replace("_", " ").replace("gpu", "GPU")
        condition = f" ({', '.join(v for _, v in e.when)})" if e.when else ""
        parts.append(f"${_plain(usd)} per {label}{condition}")
    return ", ".join(parts)


def _plain(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text if "." not in text or len(text.split(".")[1]) >= 2 else f"{value:.2f}"


def worst_case_usage(task: str, params: dict[str, Any], prompt: str) -> Usage:
    """The most a request can consume before it runs, for estimates and budget holds.

    Text output is unknown until the model stops, so it counts as `max_tokens`; prompt tokens are
    taken as one per three characters (English averages about four), erring high.
    """
    if task == "text":
        max_tokens = int(params.get("max_tokens") or 1024)
        return Usage(input_tokens=len(prompt) // 3 + 16, output_tokens=max_tokens)
    if task == "speech":
        return Usage(characters=len(prompt), audio_seconds=max(1.0, len(prompt) / 10))
    if task in ("sound-effect", "music"):
        duration = float(params.get("duration_s") or 30.0)  # automatic length: the longest allowed
        return Usage(audio_seconds=duration)
    if task == "video":
        return Usage(video_seconds=float(params.get("duration_s") or 10.0))
    return Usage(images=1)
