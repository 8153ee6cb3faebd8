"""Holds survive crashes and repeats: a hold whose process died is released after it expires, and
settling or releasing twice is the same as once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from core.budgets import Spender
from core.credits import LedgerKind
from core.projects import find_project
from core.reservations import payer_for, place_hold, release_expired_holds, release_hold, settle_hold
from core.studio import Studio
from db.schema import budget_periods, holds, new_id, utcnow

ONE = Decimal(1)


def _hold_and_die(studio: Studio, amount: int, ttl_s: int = 900) -> str:
    """What a process leaves behind when it dies between placing a hold and settling it."""
    owner = studio.principal("owner@example.com")
    now = utcnow()
    with studio.engine.begin() as conn:
        project = find_project(conn, owner, "Trailer")
        spender = Spender(owner.org_id, owner.org_name, project.id, project.name, owner.user_id, owner.email)
        hold_id = new_id()
        place_hold(
            conn,
            payer_for(conn, spender, now),
            hold_id=hold_id,
            generation_id=None,
            amount=amount,
            markup=ONE,
            expires_at=now + timedelta(seconds=ttl_s),
            now=now,
        )
    return hold_id


def _budget(studio: Studio) -> tuple[int, int]:
    with studio.engine.connect() as conn:
        row = conn.execute(select(budget_periods.c.spent_micros, budget_periods.c.held_micros)).one()
    return row.spent_micros, row.held_micros


def _status(studio: Studio, hold_id: str) -> str:
    with studio.engine.connect() as conn:
        return conn.execute(select(holds.c.status).where(holds.c.id == hold_id)).scalar_one()


def _platform_paid(studio: Studio) -> None:
    owner = studio.principal("owner@example.com")
    studio.set_budget(owner, "project", "Trailer", 1_000_000)
    studio.set_billing_mode("Acme", "platform")
    studio.grant_credits("Acme", 1_000_000, "start")


def test_a_hold_whose_process_died_is_released_after_it_expires(priced: Studio) -> None:
    _platform_paid(priced)
    hold_id = _hold_and_die(priced, 40_000, ttl_s=900)
    assert _budget(priced) == (0, 40_000)
    assert tuple(priced.credit_balance("Acme")) == (1_000_000, 40_000)
    assert priced.release_expired_holds(utcnow() + timedelta(seconds=899)) == 0  # not yet
    assert priced.release_expired_holds(utcnow() + timedelta(seconds=901)) == 1
    assert _status(priced, hold_id) == "expired"
    assert _budget(priced) == (0, 0)
    assert tuple(priced.credit_balance("Acme")) == (1_000_000, 0)
    assert priced.credit_ledger("Acme")[0].kind is LedgerKind.EXPIRY
    assert priced.release_expired_holds(utcnow() + timedelta(days=1)) == 0  # once


def test_generations_release_what_dead_processes_left(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 40_000)
    _hold_and_die(priced, 40_000, ttl_s=0)  # the whole budget, held by a process that died
    priced.generate(owner, {"project": "Trailer", "model": "flux", "prompt": "a fox"})
    assert _budget(priced) == (40_000, 0)


def test_settling_twice_is_settling_once(priced: Studio) -> None:
    _platform_paid(priced)
    hold_id = _hold_and_die(priced, 40_000)
    for _ in range(2):
        with priced.engine.begin() as conn:
            settle_hold(conn, hold_id, 30_000, ONE, utcnow())
    assert _budget(priced) == (30_000, 0)
    assert tuple(priced.credit_balance("Acme")) == (970_000, 0)
    with priced.engine.begin() as conn:
        assert release_hold(conn, hold_id, utcnow()) is False  # a settled hold stays settled
    assert _status(priced, hold_id) == "settled"


def test_releasing_twice_is_releasing_once(priced: Studio) -> None:
    _platform_paid(priced)
    hold_id = _hold_and_die(priced, 40_000)
    with priced.engine.begin() as conn:
        assert release_hold(conn, hold_id, utcnow()) is True
    with priced.engine.begin() as conn:
        assert release_hold(conn, hold_id, utcnow()) is False
        assert settle_hold(conn, hold_id, 40_000, ONE, utcnow()) == []
        assert release_expired_holds(conn, utcnow() + timedelta(days=1)) == 0
    assert _budget(priced) == (0, 0)
    assert tuple(priced.credit_balance("Acme")) == (1_000_000, 0)
    assert [e.kind for e in priced.credit_ledger("Acme")][:2] == [LedgerKind.RELEASE, LedgerKind.HOLD]


def test_a_run_that_outlived_its_hold_still_records_its_spending(priced: Studio) -> None:
    _platform_paid(priced)
    hold_id = _hold_and_die(priced, 40_000, ttl_s=0)
    priced.release_expired_holds(utcnow() + timedelta(seconds=1))
    with priced.engine.begin() as conn:
        settle_hold(conn, hold_id, 40_000, ONE, utcnow())
    assert _status(priced, hold_id) == "settled"
    assert _budget(priced) == (40_000, 0)
    assert tuple(priced.credit_balance("Acme")) == (960_000, 0)
