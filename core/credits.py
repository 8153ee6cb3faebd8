"""Credits: how an organization that uses the platform's own vendor keys pays, and its ledger.

An organization pays in one of two ways (`organizations.billing_mode`): `byok` — its own keys;
costs are tracked and budgeted, no credits move — or `platform` — the operator's keys; each
generation's cost × the markup is taken from its prepaid credit balance.

The ledger is append-only and every entry carries a unique idempotency key, so a retried grant,
purchase or capture is applied once. `amount_micros` is the change to the balance and
`held_change_micros` the change to the held part, so at every moment the account's balance is the
sum of its ledger's amounts and its held credits the sum of its held changes. CHECK constraints
keep balance ≥ held ≥ 0: the spendable part (balance − held) never goes negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select, update

from core.budgets import usd_text
from core.errors import InvalidInput, NotFound
from core.money import ceil_micros
from core.portable_sql import insert_or_ignore
from db.schema import credit_accounts, credit_ledger, new_id, organizations, utcnow

MAX_GRANT_MICROS = 10**13  # ten million dollars in one entry: anything larger is a typo


class BillingMode(StrEnum):
    BYOK = "byok"
    PLATFORM = "platform"


class LedgerKind(StrEnum):
    GRANT = "grant"  # the operator gave credits
    PURCHASE = "purchase"  # the organization bought credits
    HOLD = "hold"  # a generation's worst case was reserved
    CAPTURE = "capture"  # a generation's actual cost was taken (and the rest of its hold freed)
    RELEASE = "release"  # a failed or canceled generation's hold was freed
    REFUND = "refund"  # credits given back
    EXPIRY = "expiry"  # the hold of a generation whose process died was freed after its time-out


class CreditBalance(NamedTuple):
    """An organization's credits: the balance, the part held for running generations, the rest."""

    balance_micros: int
    held_micros: int

    @property
    def available_micros(self) -> int:
        return self.balance_micros - self.held_micros


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    kind: LedgerKind
    amount_micros: int
    held_change_micros: int
    reference: str
    created_at: datetime


@dataclass(frozen=True)
class OrgBilling:
    id: str
    name: str
    mode: BillingMode


def credit_cost(micros: int, markup: Decimal) -> int:
    """What a cost in micro-USD takes in credits at the platform's markup, rounded up."""
    return ceil_micros(Decimal(micros) * markup)


def find_org(conn: Connection, name: str) -> OrgBilling:
    """An organization by name, with how it pays; NotFound otherwise."""
    row = conn.execute(
        select(organizations.c.id, organizations.c.name, organizations.c.billing_mode).where(
            organizations.c.name == (name or "").strip()
        )
    ).first()
    if row is None:
        raise NotFound(f"No organization '{name}'.")
    return OrgBilling(row.id, row.name, BillingMode(row.billing_mode))


def set_billing_mode(conn: Connection, org_name: str, mode: BillingMode | str) -> OrgBilling:
    """Switch how an organization pays: its own keys (byok) or the platform's credits (platform)."""
    try:
        mode = BillingMode(mode)
    except ValueError as exc:
        raise InvalidInput(f"'{mode}' is not a billing mode; use byok or platform.") from exc
    row = conn.execute(
        update(organizations)
        .where(organizations.c.name == (org_name or "").strip())
        .values(billing_mode=str(mode))
        .returning(organizations.c.id, organizations.c.name)
    ).first()
    if row is None:
        raise NotFound(f"No organization '{org_name}'.")
    return OrgBilling(row.id, row.name, mode)


def add_credits(
    conn: Connection,
    org_id: str,
    micros: int,
    kind: LedgerKind,
    idempotency_key: str | None,
    reference: str = "",
) -> bool:
    """Add a grant or purchase to the balance once per idempotency key; False if it was there."""
    if kind not in (LedgerKind.GRANT, LedgerKind.PURCHASE):
        raise InvalidInput("Only grants and purchases add credits.")
    if not 0 < micros <= MAX_GRANT_MICROS:
        raise InvalidInput("Credits are added in amounts from $0.000001 to $10,000,000.")
    now = utcnow()
    # The account row first: a write, so SQLite takes its write lock before anything is read.
    conn.execute(
        insert_or_ignore(conn, credit_accounts).values(
            org_id=org_id, balance_micros=0, held_micros=0, updated_at=now
        )
    )
    key = idempotency_key or f"{kind}:{new_id()}"
    entry = ledger_values(org_id, kind, micros, 0, key, reference, now)
    added = conn.execute(
        insert_or_ignore(conn, credit_ledger, ["idempotency_key"])
        .values(**entry)
        .returning(credit_ledger.c.id)
    ).first()
    if added is None:
        return False
    conn.execute(
        update(credit_accounts)
        .where(credit_accounts.c.org_id == org_id)
        .values(balance_micros=credit_accounts.c.balance_micros + micros, updated_at=now)
    )
    return True


def ledger_values(
    org_id: str,
    kind: LedgerKind,
    amount: int,
    held_change: int,
    key: str,
    reference: str,
    now: datetime,
) -> dict[str, Any]:
    """One ledger row's values."""
    return {
        "id": new_id(),
        "org_id": org_id,
        "kind": str(kind),
        "amount_micros": amount,
        "held_change_micros": held_change,
        "idempotency_key": key[:200],
        "reference": reference[:500],
        "created_at": now,
    }


def balance(conn: Connection, org_id: str) -> CreditBalance:
    """The organization's credits ($0 when it never had any)."""
    row = conn.execute(
        select(credit_accounts.c.balance_micros, credit_accounts.c.held_micros).where(
            credit_accounts.c.org_id == org_id
        )
    ).first()
    return CreditBalance(row.balance_micros, row.held_micros) if row else CreditBalance(0, 0)


def ledger_totals(conn: Connection, org_id: str) -> CreditBalance:
    """The balance and held credits as the ledger adds them up (they equal the account's)."""
    row = conn.execute(
        select(
            func.coalesce(func.sum(credit_ledger.c.amount_micros), 0),
            func.coalesce(func.sum(credit_ledger.c.held_change_micros), 0),
        ).where(credit_ledger.c.org_id == org_id)
    ).one()
    return CreditBalance(int(row[0]), int(row[1]))


def ledger(conn: Connection, org_id: str, limit: int = 100) -> list[LedgerEntry]:
    """The organization's latest ledger entries, newest first."""
    rows = conn.execute(
        select(credit_ledger)
        .where(credit_ledger.c.org_id == org_id)
        .order_by(credit_ledger.c.created_at.desc(), credit_ledger.c.id)
        .limit(limit)
    ).all()
    return [
        LedgerEntry(
            r.id, LedgerKind(r.kind), r.amount_micros, r.held_change_micros, r.reference, r.created_at
        )
        for r in rows
    ]


def insufficient_message(org_name: str, needed: int, credits: CreditBalance) -> str:
    """Why a platform-paid generation was refused: what it needs and what is left."""
    return (
        f"Not enough credits: this needs {usd_text(needed)} and {org_name} has "
        f"{usd_text(credits.available_micros)} available ({usd_text(credits.balance_micros)} "
        f"balance, {usd_text(credits.held_micros)} held)."
    )
