"""Two ways to pay: with its own keys (no credits move) or through the platform, whose credits are
taken at the catalog price × the markup, exactly once, from an append-only ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from core.credits import LedgerKind
from core.errors import InsufficientCredits, InvalidInput, NotFound, ProviderUnavailable
from core.studio import Studio
from db.schema import credit_accounts, generations
from tests.support.instant_provider import InstantProvider

FOX = {"project": "Trailer", "model": "flux", "prompt": "a fox"}


def test_a_grant_is_applied_once_per_idempotency_key(priced: Studio) -> None:
    assert tuple(priced.credit_balance("Acme")) == (0, 0)
    priced.grant_credits("Acme", 5_000_000, "welcome", idempotency_key="welcome-acme")
    again = priced.grant_credits("Acme", 5_000_000, "welcome", idempotency_key="welcome-acme")
    assert tuple(again) == (5_000_000, 0)
    priced.grant_credits("Acme", 1_000_000, "another")
    assert priced.credit_balance("Acme").balance_micros == 6_000_000
    assert [e.kind for e in priced.credit_ledger("Acme")] == [LedgerKind.GRANT, LedgerKind.GRANT]


def test_bad_grants_and_modes_are_refused(priced: Studio) -> None:
    with pytest.raises(InvalidInput):
        priced.grant_credits("Acme", 0)
    with pytest.raises(InvalidInput):
        priced.grant_credits("Acme", -5)
    with pytest.raises(NotFound):
        priced.grant_credits("Nobody", 1_000)
    with pytest.raises(InvalidInput, match="byok or platform"):
        priced.set_billing_mode("Acme", "barter")
    assert priced.billing_mode("Acme") == "byok"


def test_own_keys_move_no_credits(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    priced.grant_credits("Acme", 1_000_000)
    result = priced.generate(owner, FOX)
    assert result.hold_id is None  # no budget and no credits: nothing to hold
    assert tuple(priced.credit_balance("Acme")) == (1_000_000, 0)


def test_platform_paid_generations_take_the_price_times_the_markup(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    priced.settings.platform_markup = Decimal("1.2")
    priced.set_billing_mode("Acme", "platform")
    priced.grant_credits("Acme", 90_000)
    result = priced.generate(owner, FOX)
    assert result.actual_cost_micros == 40_000  # the cost stays the catalog price
    assert tuple(priced.credit_balance("Acme")) == (42_000, 0)  # $0.04 × 1.2 taken
    kinds = [(e.kind, e.amount_micros, e.held_change_micros) for e in priced.credit_ledger("Acme")]
    assert kinds == [
        (LedgerKind.CAPTURE, -48_000, -48_000),
        (LedgerKind.HOLD, 0, 48_000),
        (LedgerKind.GRANT, 90_000, 0),
    ]
    with pytest.raises(InsufficientCredits) as refused:
        priced.generate(owner, FOX)
    assert refused.value.message == (
        "Not enough credits: this needs $0.0480 and Acme has $0.0420 available ($0.0420 balance, $0.00 held)."
    )


def test_too_few_credits_refuse_before_the_vendor_is_called(priced: Studio, vendor: InstantProvider) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_billing_mode("Acme", "platform")
    priced.grant_credits("Acme", 30_000)
    with pytest.raises(InsufficientCredits, match=r"needs \$0.04 and Acme has \$0.03 available"):
        priced.generate(owner, FOX)
    assert vendor.calls == 0
    with priced.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(generations)).scalar_one() == 0
    assert tuple(priced.credit_balance("Acme")) == (30_000, 0)


def test_an_organization_without_an_account_has_no_credits(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_billing_mode("Acme", "platform")
    with pytest.raises(InsufficientCredits, match=r"Acme has \$0.00 available"):
        priced.generate(owner, FOX)


def test_a_failed_platform_paid_generation_takes_nothing(priced: Studio, vendor: InstantProvider) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_billing_mode("Acme", "platform")
    priced.grant_credits("Acme", 100_000)
    vendor.fail_with = ProviderUnavailable("down", retryable=True)
    with pytest.raises(ProviderUnavailable):
        priced.generate(owner, FOX)
    assert tuple(priced.credit_balance("Acme")) == (100_000, 0)
    assert priced.credit_ledger("Acme")[0].kind is LedgerKind.RELEASE


def test_headroom_counts_credits_at_the_markup(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    priced.settings.platform_markup = Decimal("1.25")
    priced.set_billing_mode("Acme", "platform")
    priced.grant_credits("Acme", 100_000)
    priced.set_budget(owner, "project", "Trailer", 1_000_000)
    room = priced.headroom(owner, "Trailer")
    assert room is not None
    assert (room.remaining_micros, room.label) == (80_000, "credit balance")


def test_the_database_itself_refuses_a_negative_or_overdrawn_balance(priced: Studio) -> None:
    priced.grant_credits("Acme", 10_000)
    accounts = credit_accounts.c
    for change in (
        {"balance_micros": -1, "held_micros": 0},
        {"held_micros": -1},
        {"held_micros": accounts.balance_micros + 1},
    ):
        with pytest.raises(IntegrityError), priced.engine.begin() as conn:
            conn.execute(update(credit_accounts).values(**change))
    assert tuple(priced.credit_balance("Acme")) == (10_000, 0)
