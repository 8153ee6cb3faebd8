"""Money is integer micro-USD; parsing refuses nonsense and formatting reads like prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import InvalidInput
from core.money import ceil_micros, format_usd, usd_to_micros


@pytest.mark.parametrize(
    ("text", "micros"),
    [("0.04", 40_000), ("$1,000.50", 1_000_500_000), (3, 3_000_000), ("0.000001", 1), ("-2", -2_000_000)],
)
def test_dollar_amounts_parse_to_micros(text: object, micros: int) -> None:
    assert usd_to_micros(text) == micros


@pytest.mark.parametrize("text", ["abc", "", "NaN", "inf", "0.0000001"])
def test_nonsense_amounts_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        usd_to_micros(text)


def test_fractional_micros_round_up_so_we_never_undercharge() -> None:
    assert ceil_micros(Decimal("333.0001")) == 334
    assert ceil_micros(Decimal("333")) == 333


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (40_000, "$0.0400"),
        (12_500_000, "$12.50"),
        (1_234_000_000, "$1,234.00"),
        (0, "$0.00"),
        (None, "unpriced"),
    ],
)
def test_money_formats_for_people(micros: int | None, text: str) -> None:
    assert format_usd(micros) == text


@pytest.mark.parametrize(("micros", "text"), [(14, "$0.000014"), (-3, "-$0.000003"), (100, "$0.0001")])
def test_a_fraction_of_a_cent_never_reads_as_zero(micros: int, text: str) -> None:
    assert format_usd(micros) == text
