"""Budgets: hard spending limits on an organization, a project or a member, per period.

What a budget has spent and holds lives in `budget_periods`, one row per budget and period; the
reservations (core.reservations) move money in and out of those rows atomically. Periods are
UTC calendar months, ISO weeks (from Monday), or none (one period for ever). Changing a budget's
period starts counting afresh in the new period; changing its limit takes effect at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, false, or_, select

from core.accounts import ROLE_RANK, Principal, normalize_email
from core.errors import InvalidInput, NotFound
from core.money import format_usd
from core.portable_sql import upsert
from core.projects import find_project
from core.types import Role
from db.schema import budget_periods, budgets, memberships, new_id, projects, users, utcnow

NO_PERIOD = date(1970, 1, 1)  # the one period of a budget without a period
DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_LIMIT_MICROS = 10**15  # a billion dollars: anything larger is a typo
SCOPE_ORDER = {"org": 0, "project": 1, "member": 2}


class BudgetScope(StrEnum):
    ORG = "org"
    PROJECT = "project"
    MEMBER = "member"


class BudgetPeriod(StrEnum):
    MONTHLY = "monthly"
    WEEKLY = "weekly"
    NONE = "none"


@dataclass(frozen=True)
class Spender:
    """Who a generation is charged to: the organization, the project and the member."""

    org_id: str
    org_name: str
    project_id: str
    project_name: str
    user_id: str
    email: str


@dataclass(frozen=True)
class Budget:
    """A budget that applies to a generation, in its current period."""

    id: str
    scope: BudgetScope
    period: BudgetPeriod
    period_start: date
    limit_micros: int
    label: str  # "project 'Trailer' monthly budget"


@dataclass(frozen=True)
class BudgetInfo:
    """A budget as people see it: its limit and what is spent and held in the current period."""

    id: str
    scope: BudgetScope
    target: str  # the organization's or project's name, or the member's e-mail
    period: BudgetPeriod
    period_start: date
    limit_micros: int
    spent_micros: int
    held_micros: int
    thresholds: tuple[int, ...]

    @property
    def label(self) -> str:
        return budget_label(self.scope, self.target, self.period)

    @property
    def remaining_micros(self) -> int:
        return max(0, self.limit_micros - self.spent_micros - self.held_micros)


@dataclass(frozen=True)
class Headroom:
    """How much can still be spent, and which budget (or the credit balance) is the tightest."""

    remaining_micros: int
    label: str  # "project 'Trailer' monthly budget", or "credit balance"


def period_start(period: BudgetPeriod | str, now: datetime) -> date:
    """The first day (UTC) of the period `now` falls in."""
    day = now.astimezone(UTC).date()
    if period == BudgetPeriod.MONTHLY:
        return day.replace(day=1)
    if period == BudgetPeriod.WEEKLY:
        return day - timedelta(days=day.weekday())
    return NO_PERIOD


def usd_text(micros: int) -> str:
    """Dollars for messages: whole cents as "$1.00", finer amounts as "$0.0125"."""
    return format_usd(micros, places=2 if micros % 10_000 == 0 else 4)


def budget_label(scope: BudgetScope | str, target: str, period: BudgetPeriod | str) -> str:
    """How a budget is named in messages: "project 'Trailer' monthly budget"."""
    what = {"org": "organization", "project": "project", "member": "member"}[str(scope)]
    when = "" if period == BudgetPeriod.NONE else f" {period}"
    return f"{what} '{target}'{when} budget"


def overspend_message(label: str, amount: int, limit: int, spent_or_held: int) -> str:
    """Why a generation was refused: which budget and by how much."""
    over = spent_or_held + amount - limit
    return (
        f"This would overspend the {label} by {format_usd(over, places=4)} "
        f"({usd_text(limit)} limit, {usd_text(spent_or_held)} spent or held)."
    )


def check_thresholds(thresholds: Iterable[int] | None) -> list[int]:
    """Alert thresholds as sorted distinct whole percentages from 1 to 1000."""
    values = sorted({int(t) for t in (DEFAULT_THRESHOLDS if thresholds is None else thresholds)})
    if len(values) > 10 or any(t < 1 or t > 1000 for t in values):
        raise InvalidInput("Alert thresholds are up to ten whole percentages between 1 and 1000.")
    return values


def applies_to(spender: Spender) -> ColumnElement[bool]:
    """Which budgets limit a spender's generations: the organization's, the project's, the member's."""
    return and_(
        budgets.c.org_id == spender.org_id,
        or_(
            budgets.c.scope == BudgetScope.ORG,
            and_(budgets.c.scope == BudgetScope.PROJECT, budgets.c.target_id == spender.project_id),
            and_(budgets.c.scope == BudgetScope.MEMBER, budgets.c.target_id == spender.user_id),
        ),
    )


def as_budget(row: Any, spender: Spender, now: datetime) -> Budget:
    """A budgets row (id, scope, period, limit_micros) as it applies to the spender now."""
    names = {"org": spender.org_name, "project": spender.project_name, "member": spender.email}
    return Budget(
        row.id,
        BudgetScope(row.scope),
        BudgetPeriod(row.period),
        period_start(row.period, now),
        row.limit_micros,
        budget_label(row.scope, names[row.scope], row.period),
    )


def budget_values(
    conn: Connection,
    principal: Principal,
    scope: BudgetScope | str,
    target: str | None,
    limit_micros: int,
    period: BudgetPeriod | str = BudgetPeriod.MONTHLY,
    thresholds: Iterable[int] | None = None,
) -> dict[str, Any]:
    """A checked budget of the organization, a project or a member, ready for `save_budget`."""
    principal.require(Role.MANAGER, "set budgets")
    try:
        scope, period = BudgetScope(scope), BudgetPeriod(period)
    except ValueError as exc:
        raise InvalidInput(
            "A budget is for the org, a project or a member, per month, per week or with no period."
        ) from exc
    if not 0 <= int(limit_micros) <= MAX_LIMIT_MICROS:
        raise InvalidInput("A budget's limit is an amount of dollars from $0 to $1,000,000,000.")
    target_id, project_id, user_id = _target(conn, principal, scope, target)
    now = utcnow()
    return {
        "id": new_id(),
        "org_id": principal.org_id,
        "scope": str(scope),
        "target_id": target_id,
        "project_id": project_id,
        "user_id": user_id,
        "period": str(period),
        "limit_micros": int(limit_micros),
        "thresholds": check_thresholds(thresholds),
        "created_at": now,
        "updated_at": now,
    }


def save_budget(conn: Connection, values: dict[str, Any]) -> str:
    """Create the budget, or replace the limit, period and thresholds of the one there; its id."""
    statement = upsert(
        conn,
        budgets,
        ["org_id", "scope", "target_id"],
        values,
        ["period", "limit_micros", "thresholds", "updated_at"],
    )
    return conn.execute(statement.returning(budgets.c.id)).scalar_one()


def _target(
    conn: Connection, principal: Principal, scope: BudgetScope, target: str | None
) -> tuple[str, str | None, str | None]:
    if scope == BudgetScope.ORG:
        if target and target != principal.org_name:
            raise NotFound(f"You can set budgets of {principal.org_name} only, not of '{target}'.")
        return principal.org_id, None, None
    if not target:
        raise InvalidInput(f"Say which {scope} the budget is for.")
    if scope == BudgetScope.PROJECT:
        project = find_project(conn, principal, target)
        return project.id, project.id, None
    email = normalize_email(target)
    user_id = conn.execute(
        select(users.c.id)
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(users.c.email == email, memberships.c.org_id == principal.org_id)
    ).scalar()
    if user_id is None:
        raise NotFound(f"No member {email} in {principal.org_name}.")
    return user_id, None, user_id


def list_budgets(conn: Connection, principal: Principal, now: datetime) -> list[BudgetInfo]:
    """The organization's budgets with their current period; creators and viewers see their own
    member budget but not other members'."""
    query = (
        select(budgets, projects.c.name.label("project_name"), users.c.email)
        .outerjoin(projects, projects.c.id == budgets.c.project_id)
        .outerjoin(users, users.c.id == budgets.c.user_id)
        .where(budgets.c.org_id == principal.org_id)
    )
    if ROLE_RANK[principal.role] < ROLE_RANK[Role.MANAGER]:
        query = query.where(
            or_(budgets.c.scope != BudgetScope.MEMBER, budgets.c.user_id == principal.user_id)
        )
    rows = sorted(conn.execute(query).all(), key=lambda r: (SCOPE_ORDER[r.scope], r.created_at))
    starts = {r.id: period_start(r.period, now) for r in rows}
    usage = period_usage(conn, list(starts.items()))
    infos = []
    for r in rows:
        target = {"org": principal.org_name, "project": r.project_name, "member": r.email}[r.scope]
        spent, held = usage.get((r.id, starts[r.id]), (0, 0))
        infos.append(
            BudgetInfo(
                r.id,
                BudgetScope(r.scope),
                target or "?",
                BudgetPeriod(r.period),
                starts[r.id],
                r.limit_micros,
                spent,
                held,
                tuple(r.thresholds or ()),
            )
        )
    return infos


def period_usage(conn: Connection, keys: list[tuple[str, date]]) -> dict[tuple[str, date], tuple[int, int]]:
    """Spent and held micro-USD of each (budget id, period start) that has a row."""
    if not keys:
        return {}
    wanted = or_(
        false(),
        *(and_(budget_periods.c.budget_id == b, budget_periods.c.period_start == p) for b, p in keys),
    )
    rows = conn.execute(
        select(
            budget_periods.c.budget_id,
            budget_periods.c.period_start,
            budget_periods.c.spent_micros,
            budget_periods.c.held_micros,
        ).where(wanted)
    ).all()
    return {(r.budget_id, r.period_start): (r.spent_micros, r.held_micros) for r in rows}


def delete_budget(conn: Connection, principal: Principal, budget_id: str) -> None:
    """Remove a budget of the organization (its history of periods and alerts goes with it)."""
    principal.require(Role.MANAGER, "remove budgets")
    done = conn.execute(
        delete(budgets).where(budgets.c.id == budget_id, budgets.c.org_id == principal.org_id)
    )
    if done.rowcount == 0:
        raise NotFound(f"No budget {budget_id}.")
