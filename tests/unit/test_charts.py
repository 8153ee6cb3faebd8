"""The dashboard's figure builders are pure: a frame in, a plotly figure out."""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.graph_objects as go

from analytics_ui.charts import EMPTY_SPEND_TITLE, spend_by_day_figure, tick_decimals

COLUMNS = ["day", "spend_micros", "generations", "failed", "unpriced"]


def spend_frame(rows: list[tuple[str, int, int, int, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def test_bar_heights_are_the_spend_in_dollars() -> None:
    frame = spend_frame([("2026-11-20", 1_250_000, 3, 0, 0), ("2026-11-22", 40_000, 1, 1, 2)])

    figure = spend_by_day_figure(frame)

    (bars,) = figure.data
    assert isinstance(bars, go.Bar)
    assert list(bars.y) == [1.25, 0.04]
    assert [pd.Timestamp(x).date() for x in bars.x] == [date(2026, 11, 20), date(2026, 11, 22)]
    assert figure.layout.title.text == "Spend per day (USD)"


def test_hover_tells_generations_failures_and_unpriced_runs() -> None:
    frame = spend_frame([("2026-11-22", 40_000, 5, 1, 2)])

    (bars,) = spend_by_day_figure(frame).data

    assert [list(row) for row in bars.customdata] == [["$0.0400", 5, 1, 2]]
    assert "Unpriced" in bars.hovertemplate


def test_a_period_draws_every_day_with_zero_where_nothing_ran() -> None:
    frame = spend_frame([("2026-11-21", 500_000, 2, 0, 0)])

    figure = spend_by_day_figure(frame, period=(date(2026, 11, 20), date(2026, 11, 23)))

    (bars,) = figure.data
    assert list(bars.y) == [0.0, 0.5, 0.0, 0.0]
    assert list(figure.layout.xaxis.range) == ["2026-11-19 12:00", "2026-11-23 12:00"]


def test_a_day_outside_the_period_widens_it_rather_than_vanish() -> None:
    frame = spend_frame([("2026-11-19", 300_000, 1, 0, 0), ("2026-11-21", 500_000, 2, 0, 0)])

    figure = spend_by_day_figure(frame, period=(date(2026, 11, 20), date(2026, 11, 21)))

    (bars,) = figure.data
    assert list(bars.y) == [0.3, 0.0, 0.5]
    assert list(figure.layout.xaxis.range) == ["2026-11-18 12:00", "2026-11-21 12:00"]


def test_empty_frame_gives_an_empty_chart_that_says_why() -> None:
    figure = spend_by_day_figure(spend_frame([]), period=(date(2026, 11, 1), date(2026, 11, 30)))

    assert figure.data == ()
    assert figure.layout.title.text == EMPTY_SPEND_TITLE
    assert "No spend" in EMPTY_SPEND_TITLE


def test_only_unpriced_runs_still_draw_their_days_at_zero_dollars() -> None:
    frame = spend_frame([("2026-11-22", 0, 2, 0, 2)])

    (bars,) = spend_by_day_figure(frame).data

    assert list(bars.y) == [0.0]
    assert [list(row) for row in bars.customdata] == [["$0.00", 2, 0, 2]]


def test_the_axis_keeps_enough_decimals_for_tiny_local_costs() -> None:
    frame = spend_frame([("2026-11-22", 14, 1, 0, 0)])

    figure = spend_by_day_figure(frame)

    assert list(figure.data[0].y) == [0.000014]
    assert figure.data[0].customdata[0][0] == "$0.000014"
    assert figure.layout.yaxis.tickformat == ",.6~f"
    assert [tick_decimals(usd) for usd in (0, 125.0, 1.25, 0.04, 0.005, 0.000014)] == [
        2,
        2,
        2,
        3,
        4,
        6,
    ]
