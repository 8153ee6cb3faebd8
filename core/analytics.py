"""Aggregate queries for the dashboard. Aggregation happens in SQL; pandas only holds the result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, case, func, select

from db.schema import generations, projects, users


def _day(conn: Connection):
    """The UTC calendar day of a generation, on either database."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", generations.c.created_at), "YYYY-MM-DD")
    return func.substr(generations.c.created_at, 1, 10)


def spend_by_day(conn: Connection, org_id: str, days: int = 30) -> pd.DataFrame:
    """Per UTC day of the last `days`: spend (micro-USD, priced runs), generations, failures, unpriced."""
    # Whole UTC days: today and the days-1 before it.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since = today - timedelta(days=days - 1)
    day = _day(conn).label("day")
    priced_cost = func.coalesce(
        func.sum(case((generations.c.unpriced.is_(False), generations.c.actual_cost_micros))), 0
    )
    query = (
        select(
            day,
            priced_cost.label("spend_micros"),
            func.count().label("generations"),
            func.sum(case((generations.c.status == "failed", 1), else_=0)).label("failed"),
            func.sum(case((generations.c.unpriced.is_(True), 1), else_=0)).label("unpriced"),
        )
        .where(generations.c.org_id == org_id, generations.c.created_at >= since)
        .group_by(day)
        .order_by(day)
    )
    rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=["day", "spend_micros", "generations", "failed", "unpriced"])
    frame["day"] = pd.to_datetime(frame["day"])
    for column in ("spend_micros", "generations", "failed", "unpriced"):
        frame[column] = frame[column].astype("int64")
    return frame


def recent_generations(conn: Connection, org_id: str, limit: int = 100) -> pd.DataFrame:
    """The organization's latest generations with project and member, newest first."""
    query = (
        select(
            generations.c.created_at,
            projects.c.name.label("project"),
            users.c.email.label("member"),
            generations.c.provider,
            generations.c.model,
            generations.c.modality,
            generations.c.status,
            generations.c.prompt,
            generations.c.estimated_cost_micros,
            generations.c.actual_cost_micros,
            generations.c.unpriced,
            generations.c.duration_ms,
        )
        .join(projects, projects.c.id == generations.c.project_id)
        .outerjoin(users, users.c.id == generations.c.user_id)
        .where(generations.c.org_id == org_id)
        .order_by(generations.c.created_at.desc())
        .limit(limit)
    )
    rows = conn.execute(query).all()
    columns = [
        "created_at",
        "project",
        "member",
        "provider",
        "model",
        "modality",
        "status",
        "prompt",
        "estimated_cost_micros",
        "actual_cost_micros",
        "unpriced",
        "duration_ms",
    ]
    return pd.DataFrame(rows, columns=columns)
