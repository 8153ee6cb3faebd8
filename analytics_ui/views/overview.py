"""Overview: the organization's spend, runs and latest generations at a glance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from analytics_ui import queries
from analytics_ui.charts import spend_by_day_figure
from analytics_ui.markup import literal
from analytics_ui.session import signed_in_principal
from analytics_ui.summaries import recent_generations_table, spend_totals

PERIODS = {7: "Last 7 days", 30: "Last 30 days", 90: "Last 90 days"}
RECENT_LIMIT = 100

principal = signed_in_principal()

title, period_column, refresh_column = st.columns([6, 2, 1.3], vertical_alignment="bottom")
with title:
    st.title("Overview")
    st.caption(f"{literal(principal.org_name)} · spend and generations, by UTC day")
with period_column:
    days = st.selectbox(
        "Period", list(PERIODS), index=1, format_func=PERIODS.__getitem__, key="overview_days"
    )
with refresh_column:
    if st.button("Refresh", icon=":material/refresh:", width="stretch"):
        queries.clear()

spend = queries.spend_by_day(principal, days)
totals = spend_totals(spend)

spent, runs, failed, unpriced = st.columns(4)
spent.metric(
    f"Spend · {PERIODS[days].lower()}",
    totals.spend_text,
    border=True,
    help="Priced runs only, in US dollars. Unpriced runs are counted separately.",
)
runs.metric("Generations", f"{totals.generations:,}", border=True)
failed.metric(
    "Failed", f"{totals.failed:,}", border=True, help="Runs that ended in an error; they cost nothing."
)
unpriced.metric(
    "Unpriced runs",
    f"{totals.unpriced:,}",
    border=True,
    help="Runs of models with no price in the catalog: not in the spend, never counted as $0.",
)
if totals.unpriced:
    st.info(
        f"{totals.unpriced:,} run(s) used a model with no price in force, so the spend above leaves "
        "them out. Add a price to the catalog to count them.",
        icon=":material/info:",
    )

today = datetime.now(UTC).date()
with st.container(border=True):
    st.plotly_chart(
        spend_by_day_figure(spend, period=(today - timedelta(days=days - 1), today)),
        config={"displayModeBar": False},
        key="spend_by_day_chart",
    )

st.subheader("Recent generations")
recent = recent_generations_table(queries.recent_generations(principal, RECENT_LIMIT))
if recent.empty:
    st.caption("Nothing generated yet: generations made in the workspace or the CLI appear here.")
else:
    st.dataframe(
        recent,
        hide_index=True,
        column_config={
            "When (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "Prompt": st.column_config.TextColumn(width="large"),
            "Seconds": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    shown = len(recent)
    st.caption(f"The latest {shown} generation{'' if shown == 1 else 's'} of {literal(principal.org_name)}.")
