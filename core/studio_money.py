"""The money side of the one door: budgets, alerts, credits and reservations.

`Studio` (core.studio) inherits these methods; callers only ever see `Studio`. Budgets and alerts
are per organization and take the acting member; credits and billing modes are the operator's
(the CLI) and take an organization's name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from core import alerts, budgets, credits, generations, reservations
from core.accounts import Principal
from core.alerts import AlertInfo
from core.budgets import BudgetInfo, BudgetPeriod, BudgetScope, Headroom, Spender
from core.credits import BillingMode, CreditBalance, LedgerEntry, LedgerKind
from core.errors import CreatorError
from core.money import MICROS_PER_USD, ceil_micros
from core.projects import ProjectInfo, find_project
from core.reservations import Payer
from core.router import Route
from core.settings import Settings
from core.types import GenerationStatus
from db.schema import utcnow

SWEEP_EVERY_S = 60.0  # how often generations look for holds left by a dead process


class StudioMoney:
    """Studio's budget, alert, credit and reservation methods."""

    settings: Settings
    engine: Engine
    _next_sweep: float = 0.0

    # --- budgets --------------------------------------------------------------------------
    def set_budget(
        self,
        principal: Principal,
        scope: BudgetScope | str,
        target: str | None,
        limit_micros: int,
        period: BudgetPeriod | str = BudgetPeriod.MONTHLY,
        thresholds: Iterable[int] | None = None,
    ) -> BudgetInfo:
        """Create or replace the budget of the organization, a project (by name) or a member (by
        e-mail); owners and managers only. Alerts fire at `thresholds` percent (50/80/100)."""
        with self.engine.connect() as conn:
            values = budgets.budget_values(conn, principal, scope, target, limit_micros, period, thresholds)
        with self.engine.begin() as conn:  # a transaction that begins with its write (see reservations)
            budget_id = budgets.save_budget(conn, values)
        return next(b for b in self.budgets(principal) if b.id == budget_id)

    def budgets(self, principal: Principal) -> list[BudgetInfo]:
        """The organization's budgets with what is spent, held and left in the current period."""
        with self.engine.connect() as conn:
            return budgets.list_budgets(conn, principal, utcnow())

    def delete_budget(self, principal: Principal, budget_id: str) -> None:
        with self.engine.begin() as conn:
            budgets.delete_budget(conn, principal, budget_id)

    def headroom(self, principal: Principal, project: str) -> Headroom | None:
        """What the member can still spend in `project`: the tightest budget (or the credits);
        None when nothing limits it."""
        with self.engine.connect() as conn:
            payer = reservations.payer_for(
                conn, _spender(principal, find_project(conn, principal, project)), utcnow()
            )
            usage = budgets.period_usage(conn, [(b.id, b.period_start) for b in payer.budgets])
            room = [
                Headroom(max(0, b.limit_micros - sum(usage.get((b.id, b.period_start), (0, 0)))), b.label)
                for b in payer.budgets
            ]
            if payer.mode == BillingMode.PLATFORM:
                available = credits.balance(conn, principal.org_id).available_micros
                room.append(Headroom(int(available / self.settings.platform_markup), "credit balance"))
        return min(room, key=lambda h: h.remaining_micros) if room else None

    # --- alerts ---------------------------------------------------------------------------
    def alerts(self, principal: Principal, unacknowledged_only: bool = False) -> list[AlertInfo]:
        """Budget alerts of the organization, newest first."""
        with self.engine.connect() as conn:
            return alerts.list_alerts(conn, principal, unacknowledged_only)

    def acknowledge_alert(self, principal: Principal, alert_id: str) -> None:
        with self.engine.begin() as conn:
            alerts.acknowledge(conn, principal, alert_id)

    # --- credits (the operator's) ---------------------------------------------------------
    def grant_credits(
        self, org: str, micros: int, reason: str = "", idempotency_key: str | None = None
    ) -> CreditBalance:
        """Give an organization credits, once per idempotency key; returns the new balance."""
        with self.engine.connect() as conn:
            org_id = credits.find_org(conn, org).id
        # A transaction of its own that begins with a write (see core.reservations on SQLite).
        with self.engine.begin() as conn:
            credits.add_credits(conn, org_id, micros, LedgerKind.GRANT, idempotency_key, reason)
            return credits.balance(conn, org_id)

    def credit_balance(self, org: str) -> CreditBalance:
        """An organization's credits: (balance, held), in micro-USD."""
        with self.engine.connect() as conn:
            return credits.balance(conn, credits.find_org(conn, org).id)

    def credit_ledger(self, org: str, limit: int = 100) -> list[LedgerEntry]:
        """An organization's latest credit ledger entries, newest first."""
        with self.engine.connect() as conn:
            return credits.ledger(conn, credits.find_org(conn, org).id, limit)

    def billing_mode(self, org: str) -> BillingMode:
        with self.engine.connect() as conn:
            return credits.find_org(conn, org).mode

    def set_billing_mode(self, org: str, mode: BillingMode | str) -> BillingMode:
        """byok: the organization's own keys, no credits move; platform: credits pay at the markup."""
        with self.engine.begin() as conn:
            return credits.set_billing_mode(conn, org, mode).mode

    # --- reservations ---------------------------------------------------------------------
    def release_expired_holds(self, now: datetime | None = None) -> int:
        """Release holds left by processes that died (past their time-out); how many."""
        with self.engine.begin() as conn:
            return reservations.release_expired_holds(conn, now or utcnow())

    def _payer(self, conn: Connection, principal: Principal, project: ProjectInfo) -> Payer:
        return reservations.payer_for(conn, _spender(principal, project), utcnow())

    def _held_amount(self, route: Route) -> int:
        """What a route holds: its worst-case estimate, or the configured floor when unknown."""
        if route.estimate is not None:
            return route.estimate
        return ceil_micros(self.settings.unknown_estimate_usd * MICROS_PER_USD)

    def _place_hold(
        self, conn: Connection, payer: Payer, hold_id: str, generation_id: str, amount: int
    ) -> None:
        now = utcnow()
        reservations.place_hold(
            conn,
            payer,
            hold_id=hold_id,
            generation_id=generation_id,
            amount=amount,
            markup=self.settings.platform_markup,
            expires_at=now + timedelta(seconds=self.settings.hold_ttl_s),
            now=now,
        )

    def _settle(self, conn: Connection, hold_id: str | None, cost: int | None) -> list[AlertInfo]:
        if hold_id is None:
            return []
        return reservations.settle_hold(conn, hold_id, cost, self.settings.platform_markup, utcnow())

    def _record_failure(
        self,
        principal: Principal,
        generation_id: str,
        hold_id: str | None,
        error: CreatorError,
        *,
        served: bool = False,
        cost: int | None = None,
    ) -> None:
        """Record a failure and, in the same transaction, release the hold — or settle it to
        `cost` when a provider did the work. The hold comes first: a write, so SQLite takes its
        write lock at once."""
        status = GenerationStatus.CANCELED if error.code == "canceled" else GenerationStatus.FAILED
        fired: list[AlertInfo] = []
        with self.engine.begin() as conn:
            if served:
                fired = self._settle(conn, hold_id, cost)
            elif hold_id is not None:
                reservations.release_hold(conn, hold_id, utcnow())
            generations.fail_generation(
                conn, generation_id, status=status, code=error.code, message=error.message
            )
        alerts.deliver_in_background(self.settings, fired, principal.org_name)

    def _sweep_expired_holds(self) -> None:
        """Now and then, before a new hold, release what dead processes left held."""
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + min(SWEEP_EVERY_S, self.settings.hold_ttl_s / 4)
        self.release_expired_holds()


def _spender(principal: Principal, project: ProjectInfo) -> Spender:
    return Spender(
        principal.org_id, principal.org_name, project.id, project.name, principal.user_id, principal.email
    )
