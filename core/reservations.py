"""Reservations ("holds"): before a provider is called, its worst-case cost is held against every
budget that applies and, when the organization pays through the platform, against its credits;
afterwards the hold is settled to the actual cost, or released. Holds of a process that died
expire and are released by `release_expired_holds`.

Why this is safe under concurrency on SQLite and on PostgreSQL at READ COMMITTED: each amount is
held with one conditional statement,

    UPDATE budget_periods SET held_micros = held_micros + :x
     WHERE budget_id = :b AND period_start = :p
       AND spent_micros + held_micros + :x <= (SELECT limit_micros FROM budgets WHERE id = :b)
    RETURNING budget_id

which PostgreSQL re-checks against the newest row version after waiting for a concurrent writer,
and which SQLite runs under its single write lock. No row: refused, and the whole transaction
(generation row, hold, ledger entry, other budgets) rolls back. (A period's first hold finds no
row: it inserts it with INSERT … ON CONFLICT DO NOTHING and tries once more.) Rows are locked in
one global order (budgets by id, then the credit account) so transactions cannot deadlock; every
transaction begins with a write, so SQLite never has to upgrade a stale read snapshot; and the
non-locking INSERTs come first, keeping each row lock to the few statements that follow it.
Settle and release are conditional on the hold's status (`held`), so a second call does nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Connection, DateTime, String, bindparam, insert, select, update

from core.alerts import AlertInfo, record_crossings
from core.budgets import Budget, Spender, applies_to, as_budget, overspend_message
from core.credits import (
    BillingMode,
    LedgerKind,
    balance,
    credit_cost,
    insufficient_message,
    ledger_values,
)
from core.errors import BudgetExceeded, InsufficientCredits
from core.portable_sql import insert_or_ignore
from db.schema import budget_periods, budgets, credit_accounts, credit_ledger, holds, organizations

log = logging.getLogger(__name__)
_periods = budget_periods.c
_accounts = credit_accounts.c


@dataclass(frozen=True)
class Payer:
    """What a generation's cost is held against: the budgets that apply and, when the
    organization pays through the platform, its credits."""

    spender: Spender
    mode: BillingMode
    budgets: list[Budget]

    @property
    def needs_hold(self) -> bool:
        return bool(self.budgets) or self.mode == BillingMode.PLATFORM


def payer_for(conn: Connection, spender: Spender, now: datetime) -> Payer:
    """How the organization pays and the budgets that apply, ordered by id (the lock order)."""
    rows = conn.execute(
        select(
            organizations.c.billing_mode,
            budgets.c.id,
            budgets.c.scope,
            budgets.c.period,
            budgets.c.limit_micros,
        )
        .select_from(organizations.outerjoin(budgets, applies_to(spender)))
        .where(organizations.c.id == spender.org_id)
        .order_by(budgets.c.id)
    ).all()
    found = [as_budget(r, spender, now) for r in rows if r.id is not None]
    return Payer(spender, BillingMode(rows[0].billing_mode), found)


_LIMIT = select(budgets.c.limit_micros).where(budgets.c.id == _periods.budget_id).scalar_subquery()
_THRESHOLDS = select(budgets.c.thresholds).where(budgets.c.id == _periods.budget_id).scalar_subquery()
_NOW = DateTime(timezone=True)
_CLOSED = (
    holds.c.id,
    holds.c.org_id,
    holds.c.generation_id,
    holds.c.amount_micros,
    holds.c.credit_micros,
    holds.c.budgets,
)
_THIS_PERIOD = (_periods.budget_id == bindparam("budget"), _periods.period_start == bindparam("period"))

# Built once: the hot path runs them with parameters and skips building and cache-keying them.
_HOLD_BUDGET = (
    update(budget_periods)
    .where(
        *_THIS_PERIOD,
        _periods.spent_micros + _periods.held_micros + bindparam("amount", type_=BigInteger) <= _LIMIT,
    )
    .values(held_micros=_periods.held_micros + bindparam("amount", type_=BigInteger))
    .returning(_periods.budget_id)
)
_SETTLE_BUDGET = (
    update(budget_periods)
    .where(*_THIS_PERIOD)
    .values(
        held_micros=_periods.held_micros - bindparam("held", type_=BigInteger),
        spent_micros=_periods.spent_micros + bindparam("charged", type_=BigInteger),
    )
    .returning(_periods.spent_micros, _LIMIT.label("limit"), _THRESHOLDS.label("thresholds"))
)
_FREE_BUDGET = (
    update(budget_periods)
    .where(*_THIS_PERIOD)
    .values(held_micros=_periods.held_micros - bindparam("held", type_=BigInteger))
)
_HOLD_CREDITS = (
    update(credit_accounts)
    .where(
        _accounts.org_id == bindparam("org"),
        _accounts.balance_micros - _accounts.held_micros >= bindparam("credit", type_=BigInteger),
    )
    .values(
        held_micros=_accounts.held_micros + bindparam("credit", type_=BigInteger),
        updated_at=bindparam("now", type_=_NOW),
    )
    .returning(_accounts.org_id)
)
_CAPTURE_CREDITS = (
    update(credit_accounts)
    .where(_accounts.org_id == bindparam("org"))
    .values(
        balance_micros=_accounts.balance_micros - bindparam("taken", type_=BigInteger),
        held_micros=_accounts.held_micros - bindparam("held", type_=BigInteger),
        updated_at=bindparam("now", type_=_NOW),
    )
)
_CLOSE_HOLD = (
    update(holds)
    .where(holds.c.id == bindparam("hold"), holds.c.status == bindparam("was"))
    .values(
        status=bindparam("becomes", type_=String),
        closed_at=bindparam("now", type_=_NOW),
        actual_micros=bindparam("actual", type_=BigInteger),
    )
    .returning(*_CLOSED)
)
_INSERT_HOLD = insert(holds)
_INSERT_LEDGER = insert(credit_ledger)


def place_hold(
    conn: Connection,
    payer: Payer,
    *,
    hold_id: str,
    generation_id: str | None,
    amount: int,
    markup: Decimal,
    expires_at: datetime,
    now: datetime,
) -> None:
    """Hold `amount` against every budget of `payer` (and its credits × markup), or raise
    BudgetExceeded / InsufficientCredits saying which and by how much. Run it in the caller's
    transaction: a refusal must roll that transaction back."""
    org_id = payer.spender.org_id
    credit = credit_cost(amount, markup) if payer.mode == BillingMode.PLATFORM else None
    conn.execute(
        _INSERT_HOLD,
        {
            "id": hold_id,
            "org_id": org_id,
            "generation_id": generation_id,
            "status": "held",
            "amount_micros": amount,
            "credit_micros": credit,
            "budgets": [
                {"id": b.id, "period": b.period_start.isoformat(), "label": b.label} for b in payer.budgets
            ],
            "created_at": now,
            "expires_at": expires_at,
        },
    )
    if credit is not None:
        why = _reference(hold_id, generation_id)
        entry = ledger_values(org_id, LedgerKind.HOLD, 0, credit, f"hold:{hold_id}", why, now)
        conn.execute(_INSERT_LEDGER, entry)
    for budget in sorted(payer.budgets, key=lambda b: b.id):
        if not _hold_budget(conn, budget, org_id, amount):
            raise BudgetExceeded(_overspend(conn, budget, amount))
    if credit is not None:
        held = conn.execute(_HOLD_CREDITS, {"org": org_id, "credit": credit, "now": now}).first()
        if held is None:
            raise InsufficientCredits(
                insufficient_message(payer.spender.org_name, credit, balance(conn, org_id))
            )


def _hold_budget(conn: Connection, budget: Budget, org_id: str, amount: int) -> bool:
    """The conditional UPDATE; on a period's first hold its row is made first (portably:
    INSERT … ON CONFLICT DO NOTHING, which waits for a concurrent insert of the same row)."""
    key = {"budget": budget.id, "period": budget.period_start, "amount": amount}
    if conn.execute(_HOLD_BUDGET, key).first() is not None:
        return True
    conn.execute(
        insert_or_ignore(conn, budget_periods).values(
            budget_id=budget.id,
            period_start=budget.period_start,
            org_id=org_id,
            spent_micros=0,
            held_micros=0,
        )
    )
    return conn.execute(_HOLD_BUDGET, key).first() is not None


def _overspend(conn: Connection, budget: Budget, amount: int) -> str:
    row = conn.execute(
        select(_periods.spent_micros, _periods.held_micros, budgets.c.limit_micros)
        .join(budgets, budgets.c.id == _periods.budget_id)
        .where(_periods.budget_id == budget.id, _periods.period_start == budget.period_start)
    ).first()
    limit, used = (row.limit_micros, row.spent_micros + row.held_micros) if row else (budget.limit_micros, 0)
    return overspend_message(budget.label, amount, limit, used)


def _close(
    conn: Connection, hold_id: str, was: str, becomes: str, now: datetime, actual: int | None = None
) -> Any:
    params = {"hold": hold_id, "was": was, "becomes": becomes, "now": now, "actual": actual}
    return conn.execute(_CLOSE_HOLD, params).first()


def settle_hold(
    conn: Connection, hold_id: str, actual: int | None, markup: Decimal, now: datetime
) -> list[AlertInfo]:
    """Turn a hold into spending of `actual` micro-USD (None — unpriced — counts as the amount
    held: unknown is never $0) and take its credits; returns the budget alerts it raised.

    A second call does nothing. A hold that expired meanwhile (a run longer than the hold's
    time-out) still records its spending; its credits are taken only if they are available.
    """
    row = _close(conn, hold_id, "held", "settled", now, actual)
    late = row is None
    if late:
        row = _close(conn, hold_id, "expired", "settled", now, actual)
        if row is None:
            return []  # settled or released already
    charged = row.amount_micros if actual is None else actual
    wanted = credit_cost(charged, markup)
    taken = 0
    if row.credit_micros is not None and not late:
        taken = min(wanted, row.credit_micros)
        if wanted > taken:
            log.warning("Hold %s covered %s of %s credits; the rest is not charged.", hold_id, taken, wanted)
        entry = ledger_values(
            row.org_id,
            LedgerKind.CAPTURE,
            -taken,
            -row.credit_micros,
            f"capture:{hold_id}",
            _reference(hold_id, row.generation_id),
            now,
        )
        conn.execute(_INSERT_LEDGER, entry)
    crossings = []
    for item in sorted(row.budgets, key=lambda b: b["id"]):
        start = date.fromisoformat(item["period"])
        params = {
            "budget": item["id"],
            "period": start,
            "held": 0 if late else row.amount_micros,
            "charged": charged,
        }
        spent = conn.execute(_SETTLE_BUDGET, params).first()
        if spent is not None and charged > 0:  # None: the budget was removed meanwhile
            crossings.append((item, start, spent))
    if row.credit_micros is not None and not late:
        conn.execute(
            _CAPTURE_CREDITS, {"org": row.org_id, "taken": taken, "held": row.credit_micros, "now": now}
        )
    elif row.credit_micros is not None:
        _capture_late(conn, row, wanted, now)
    fired = []
    for item, start, spent in crossings:
        fired += record_crossings(
            conn,
            row.org_id,
            item["id"],
            start,
            item["label"],
            spent.thresholds or [],
            spent.limit,
            spent.spent_micros - charged,
            spent.spent_micros,
        )
    return fired


def _capture_late(conn: Connection, row: Any, wanted: int, now: datetime) -> None:
    taken = conn.execute(
        update(credit_accounts)
        .where(_accounts.org_id == row.org_id, _accounts.balance_micros - _accounts.held_micros >= wanted)
        .values(balance_micros=_accounts.balance_micros - wanted, updated_at=now)
        .returning(_accounts.org_id)
    ).first()
    if taken is None:
        log.warning("Hold %s had expired and %s credits are not available; not charged.", row.id, wanted)
        return
    why = _reference(row.id, row.generation_id)
    conn.execute(
        _INSERT_LEDGER,
        ledger_values(row.org_id, LedgerKind.CAPTURE, -wanted, 0, f"capture:{row.id}", why, now),
    )


def _reference(hold_id: str, generation_id: str | None) -> str:
    return f"generation {generation_id}" if generation_id else f"hold {hold_id}"


def release_hold(conn: Connection, hold_id: str, now: datetime) -> bool:
    """Give back everything a hold holds (a failed or canceled generation); False if it was closed."""
    row = _close(conn, hold_id, "held", "released", now)
    if row is None:
        return False
    _free(conn, [row], LedgerKind.RELEASE, now)
    return True


def release_expired_holds(conn: Connection, now: datetime) -> int:
    """Release the holds whose time-out passed (their process died); how many there were."""
    rows = conn.execute(
        update(holds)
        .where(holds.c.status == "held", holds.c.expires_at < now)
        .values(status="expired", closed_at=now)
        .returning(*_CLOSED)
    ).all()
    if rows:
        _free(conn, rows, LedgerKind.EXPIRY, now)
        log.info("Released %d expired holds.", len(rows))
    return len(rows)


def _free(conn: Connection, rows: list[Any], kind: LedgerKind, now: datetime) -> None:
    """Take closed holds' amounts off their budgets and credits, in the global lock order."""
    entries = [
        ledger_values(
            r.org_id, kind, 0, -r.credit_micros, f"release:{r.id}", _reference(r.id, r.generation_id), now
        )
        for r in rows
        if r.credit_micros is not None
    ]
    if entries:
        conn.execute(_INSERT_LEDGER, entries)
    per_period: dict[tuple[str, str], int] = defaultdict(int)
    per_org: dict[str, int] = defaultdict(int)
    for r in rows:
        for item in r.budgets:
            per_period[(item["id"], item["period"])] += r.amount_micros
        if r.credit_micros is not None:
            per_org[r.org_id] += r.credit_micros
    for (budget_id, period), amount in sorted(per_period.items()):
        conn.execute(
            _FREE_BUDGET, {"budget": budget_id, "period": date.fromisoformat(period), "held": amount}
        )
    for org_id, credit in sorted(per_org.items()):
        conn.execute(_CAPTURE_CREDITS, {"org": org_id, "taken": 0, "held": credit, "now": now})
