"""Pure plotly figure builders for the dashboard: plain frames in, figures out, no Streamlit."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
import plotly.graph_objects as go

from core.money import MICROS_PER_USD, format_usd

SPEND_COLOR = "#4F46E5"
SPEND_TITLE = "Spend per day (USD)"
EMPTY_SPEND_TITLE = "No spend in this period yet: make a generation and it shows up here"
_DAY_MS = 24 * 60 * 60 * 1000
_COUNTS = ["spend_micros", "generations", "failed", "unpriced"]


def spend_by_day_figure(frame: pd.DataFrame, *, period: tuple[date, date] | None = None) -> go.Figure:
    """A bar per UTC day of spend in USD (micro-USD / 1e6), with runs in the hover text.

    `frame` has the columns of `Studio.spend_by_day`. With `period` (first day, last day),
    days without generations are drawn as empty bars so the axis covers the whole period.
    """
    if period:
        days = _every_day(frame, period)
        period = (days["day"].iloc[0].date(), days["day"].iloc[-1].date())
    else:
        days = _by_day(frame)
    figure = go.Figure()
    if days.empty or not days["generations"].any():
        _style(figure, EMPTY_SPEND_TITLE, period, decimals=2)
        return figure
    usd = days["spend_micros"] / MICROS_PER_USD
    hover = pd.DataFrame(
        {
            "spend": [format_usd(int(m)) for m in days["spend_micros"]],
            "generations": days["generations"],
            "failed": days["failed"],
            "unpriced": days["unpriced"],
        }
    )
    figure.add_trace(
        go.Bar(
            x=days["day"],
            y=usd,
            width=_DAY_MS * 0.8,
            marker={"color": SPEND_COLOR, "cornerradius": 3},
            customdata=hover.to_numpy(),
            hovertemplate=(
                "<b>%{x|%a %d %b %Y}</b><br>Spend: %{customdata[0]}"
                "<br>Generations: %{customdata[1]}<br>Failed: %{customdata[2]}"
                "<br>Unpriced: %{customdata[3]}<extra></extra>"
            ),
            name="Spend (USD)",
        )
    )
    _style(figure, SPEND_TITLE, period, decimals=tick_decimals(float(usd.max())))
    return figure


def tick_decimals(largest_usd: float) -> int:
    """Enough decimals for the axis to tell the ticks apart: 2 for dollars, up to 6 for micros."""
    if largest_usd <= 0:
        return 2
    return max(2, min(6, math.ceil(-math.log10(largest_usd)) + 1))


def _by_day(frame: pd.DataFrame) -> pd.DataFrame:
    days = frame.copy()
    days["day"] = pd.to_datetime(days["day"])
    return days.sort_values("day").reset_index(drop=True)


def _every_day(frame: pd.DataFrame, period: tuple[date, date]) -> pd.DataFrame:
    """The frame reindexed onto every day of the period, zero where nothing ran.

    A day of the frame outside the period widens it: a chart never drops a day that has data.
    """
    days = _by_day(frame).groupby("day")[_COUNTS].sum()
    first, last = _widened(period, days.index)
    index = pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="D", name="day")
    return days.reindex(index, fill_value=0).astype("int64").reset_index()


def _widened(period: tuple[date, date], days: pd.Index) -> tuple[date, date]:
    first, last = period
    if len(days):
        first = min(first, days.min().date())
        last = max(last, days.max().date())
    return first, last


def _style(figure: go.Figure, title: str, period: tuple[date, date] | None, *, decimals: int) -> None:
    figure.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=340,
        margin={"l": 8, "r": 8, "t": 48, "b": 8},
        showlegend=False,
        bargap=0.2,
        hoverlabel={"align": "left"},
    )
    figure.update_xaxes(type="date", showgrid=False, tickformat="%d %b")
    figure.update_yaxes(tickprefix="$", tickformat=f",.{decimals}~f", rangemode="tozero", zeroline=True)
    if period:
        first, last = period
        # Half a day of margin either side keeps the first and last bars whole.
        figure.update_xaxes(range=[f"{first - timedelta(days=1)} 12:00", f"{last} 12:00"])
