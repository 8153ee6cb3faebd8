"""Pure shaping of query frames into what the dashboard shows: headline totals and tables."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.money import format_usd


@dataclass(frozen=True)
class SpendTotals:
    """The headline numbers of a period; unpriced runs are counted, never priced at $0."""

    spend_micros: int
    generations: int
    failed: int
    unpriced: int

    @property
    def spend_text(self) -> str:
        return format_usd(self.spend_micros)


def spend_totals(frame: pd.DataFrame) -> SpendTotals:
    """Sum the per-day frame of `Studio.spend_by_day` into the period's totals."""
    if frame.empty:
        return SpendTotals(0, 0, 0, 0)
    return SpendTotals(
        spend_micros=int(frame["spend_micros"].sum()),
        generations=int(frame["generations"].sum()),
        failed=int(frame["failed"].sum()),
        unpriced=int(frame["unpriced"].sum()),
    )


# Cost first after who and what: the dashboard is about spend; the long prompt goes last.
RECENT_COLUMNS = [
    "When (UTC)",
    "Project",
    "Member",
    "Model",
    "Status",
    "Cost",
    "Estimate",
    "Seconds",
    "Prompt",
]


def recent_generations_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The recent-generations frame with costs as USD text ("unpriced" for unpriced runs)."""
    if frame.empty:
        return pd.DataFrame(columns=RECENT_COLUMNS)
    unpriced = frame["unpriced"].astype(bool)
    table = pd.DataFrame(
        {
            "When (UTC)": _utc_naive(frame["created_at"]),
            "Project": frame["project"],
            "Member": frame["member"].fillna("(removed)"),
            "Model": frame["model"] + " · " + frame["provider"],
            "Status": frame["status"],
            "Prompt": frame["prompt"],
            "Estimate": [
                cost_text(v, u) for v, u in zip(frame["estimated_cost_micros"], unpriced, strict=True)
            ],
            "Cost": [cost_text(v, u) for v, u in zip(frame["actual_cost_micros"], unpriced, strict=True)],
            "Seconds": pd.to_numeric(frame["duration_ms"], errors="coerce") / 1000,
        }
    )
    return table[RECENT_COLUMNS]


def cost_text(micros: object, unpriced: bool) -> str:
    """A cost cell: "unpriced" for unpriced runs, "—" when no cost is known, else USD."""
    if unpriced:
        return "unpriced"
    if micros is None or pd.isna(micros):
        return "—"
    return format_usd(int(micros))


def _utc_naive(values: pd.Series) -> pd.Series:
    # SQLite hands back naive datetimes (stored as UTC), PostgreSQL aware ones: show both as UTC.
    stamps = pd.to_datetime(values, utc=True)
    return stamps.dt.tz_convert("UTC").dt.tz_localize(None)
