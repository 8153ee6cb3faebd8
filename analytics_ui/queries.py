"""The dashboard's reads through the Studio, cached for a few seconds per organization and role."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics_ui.session import studio
from core.accounts import Principal

# Short, so a generation made in the workspace shows up on the next rerun or refresh.
TTL_SECONDS = 10


def spend_by_day(principal: Principal, days: int) -> pd.DataFrame:
    """Spend, generations, failures and unpriced runs per UTC day of the last `days` days."""
    return _spend_by_day(principal.org_id, str(principal.role), days, principal)


def recent_generations(principal: Principal, limit: int = 100) -> pd.DataFrame:
    """The organization's latest generations, newest first."""
    return _recent_generations(principal.org_id, str(principal.role), limit, principal)


def clear() -> None:
    """Forget cached results so the next read goes to the database."""
    _spend_by_day.clear()
    _recent_generations.clear()


# The role is part of the key because the Studio authorizes by it; the principal itself
# (underscored) is not hashed. Errors such as Forbidden are raised, never cached.
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _spend_by_day(org_id: str, role: str, days: int, _principal: Principal) -> pd.DataFrame:
    return studio().spend_by_day(_principal, days)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _recent_generations(org_id: str, role: str, limit: int, _principal: Principal) -> pd.DataFrame:
    return studio().recent_generations_frame(_principal, limit)
