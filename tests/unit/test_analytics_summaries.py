"""What the dashboard shows from a query frame: totals and the recent-generations table."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from analytics_ui.markup import literal
from analytics_ui.summaries import cost_text, recent_generations_table, spend_totals


def test_totals_sum_the_period_and_keep_unpriced_runs_apart() -> None:
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(["2026-11-20", "2026-11-21"]),
            "spend_micros": [1_000_000, 250_000],
            "generations": [3, 4],
            "failed": [1, 0],
            "unpriced": [0, 2],
        }
    )

    totals = spend_totals(frame)

    assert (totals.spend_micros, totals.generations, totals.failed, totals.unpriced) == (
        1_250_000,
        7,
        1,
        2,
    )
    assert totals.spend_text == "$1.2500"


def test_no_generations_is_zero_dollars_and_zero_runs() -> None:
    totals = spend_totals(pd.DataFrame(columns=["spend_micros", "generations", "failed", "unpriced"]))

    assert totals.spend_text == "$0.00"
    assert totals.generations == totals.unpriced == 0


def test_cost_cells_say_unpriced_never_zero_dollars() -> None:
    assert cost_text(None, True) == "unpriced"
    assert cost_text(0, True) == "unpriced"
    assert cost_text(None, False) == "—"
    assert cost_text(float("nan"), False) == "—"
    assert cost_text(167, False) == "$0.0002"


def test_recent_table_formats_costs_and_times() -> None:
    frame = pd.DataFrame(
        {
            "created_at": [datetime(2026, 11, 22, 9, 30), datetime(2026, 11, 22, 9, 0)],
            "project": ["Launch", "Launch"],
            "member": ["maker@example.com", None],
            "provider": ["diffusers", "instant"],
            "model": ["tiny-sd", "sketch"],
            "modality": ["image", "image"],
            "status": ["succeeded", "succeeded"],
            "prompt": ["a red fox", "a blue whale"],
            "estimated_cost_micros": [None, None],
            "actual_cost_micros": [5000, None],
            "unpriced": [False, True],
            "duration_ms": [1500, 200],
        }
    )

    table = recent_generations_table(frame)

    assert list(table["Cost"]) == ["$0.0050", "unpriced"]
    assert list(table["Estimate"]) == ["—", "unpriced"]
    assert list(table["Model"]) == ["tiny-sd · diffusers", "sketch · instant"]
    assert list(table["Member"]) == ["maker@example.com", "(removed)"]
    assert list(table["Seconds"]) == [1.5, 0.2]
    assert table["When (UTC)"].iloc[0] == pd.Timestamp("2026-11-22 09:30")


def test_aware_postgres_timestamps_show_in_utc() -> None:
    frame = pd.DataFrame(
        {
            "created_at": [pd.Timestamp("2026-11-22 10:30", tz="Europe/Paris")],
            "project": ["Launch"],
            "member": ["a@example.com"],
            "provider": ["diffusers"],
            "model": ["tiny-sd"],
            "modality": ["image"],
            "status": ["failed"],
            "prompt": ["x"],
            "estimated_cost_micros": [100],
            "actual_cost_micros": [None],
            "unpriced": [False],
            "duration_ms": [None],
        }
    )

    table = recent_generations_table(frame)

    assert table["When (UTC)"].iloc[0] == pd.Timestamp("2026-11-22 09:30")
    assert list(table["Cost"]) == ["—"]
    assert list(table["Estimate"]) == ["$0.0001"]


def test_names_from_the_database_are_shown_literally_in_markdown() -> None:
    assert literal("owner@example.com") == "owner\\@example\\.com"
    assert literal("**Acme** [Studio]") == "\\*\\*Acme\\*\\* \\[Studio\\]"
    assert literal("Acme Studio") == "Acme Studio"
