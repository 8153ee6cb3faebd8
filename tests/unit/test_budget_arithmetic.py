"""Budget arithmetic is pure: periods, threshold crossings, messages and the credit markup."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.alerts import crossed
from core.budgets import NO_PERIOD, budget_label, check_thresholds, overspend_message, period_start
from core.credits import CreditBalance, credit_cost, insufficient_message
from core.errors import InvalidInput


def test_periods_start_on_the_first_of_the_month_and_on_monday_in_utc() -> None:
    late_sunday = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    assert period_start("monthly", late_sunday) == date(2026, 11, 1)
    assert period_start("weekly", late_sunday) == date(2026, 11, 23)
    assert period_start("none", late_sunday) == NO_PERIOD


def test_a_budget_without_period_has_one_period_for_ever() -> None:
    assert period_start("none", datetime(2031, 1, 1, tzinfo=UTC)) == period_start("none", datetime.now(UTC))


def test_each_threshold_is_crossed_by_exactly_one_step() -> None:
    limit = 1_000_000
    assert crossed([50, 80, 100], limit, 0, 490_000) == []
    assert crossed([50, 80, 100], limit, 490_000, 500_000) == [50]
    assert crossed([50, 80, 100], limit, 500_000, 540_000) == []
    assert crossed([50, 80, 100], limit, 540_000, 1_000_000) == [80, 100]
    assert crossed([50, 80, 100], limit, 1_000_000, 1_200_000) == []


def test_the_refusal_says_which_budget_and_by_how_much() -> None:
    label = budget_label("project", "Trailer", "monthly")
    assert overspend_message(label, 30_000, 1_000_000, 990_000) == (
        "This would overspend the project 'Trailer' monthly budget by $0.0200 "
        "($1.00 limit, $0.99 spent or held)."
    )
    assert budget_label("member", "ann@example.com", "none") == "member 'ann@example.com' budget"


def test_thresholds_default_to_50_80_100_and_are_checked() -> None:
    assert check_thresholds(None) == [50, 80, 100]
    assert check_thresholds([100, 25, 25]) == [25, 100]
    with pytest.raises(InvalidInput):
        check_thresholds([0])
    with pytest.raises(InvalidInput):
        check_thresholds(range(1, 20))


def test_credits_are_the_cost_times_the_markup_rounded_up() -> None:
    assert credit_cost(40_000, Decimal("1.2")) == 48_000
    assert credit_cost(1, Decimal("1.2")) == 2
    assert credit_cost(0, Decimal("1.2")) == 0


def test_insufficient_credits_says_what_is_needed_and_what_is_left() -> None:
    message = insufficient_message("Acme", 48_000, CreditBalance(50_000, 20_000))
    assert message == (
        "Not enough credits: this needs $0.0480 and Acme has $0.03 available ($0.05 balance, $0.02 held)."
    )
