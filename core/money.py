"""Money is integer micro-USD everywhere: 1 USD = 1_000_000. Parsing and formatting live here."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, InvalidOperation

from core.errors import InvalidInput

MICROS_PER_USD = 1_000_000


def usd_to_micros(amount: str | int | Decimal) -> int:
    """Parse a dollar amount ("0.04", "$1,000.50", 3) into micro-USD, refusing fractions of a micro."""
    text = str(amount).strip().replace("$", "").replace(",", "").replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidInput(f"'{amount}' is not an amount of dollars.") from exc
    if not value.is_finite():
        raise InvalidInput(f"'{amount}' is not an amount of dollars.")
    micros = value * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise InvalidInput(f"'{amount}' has more precision than a millionth of a dollar.")
    return int(micros)


def ceil_micros(value: Decimal) -> int:
    """Round a fractional micro-USD cost up, so we never under-charge."""
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def format_usd(micros: int | None, *, places: int | None = None) -> str:
    """Format micro-USD for people: $0.0400, $12.50, $1,234.00; None is 'unpriced'."""
    if micros is None:
        return "unpriced"
    value = Decimal(micros) / MICROS_PER_USD
    if places is None:
        if abs(micros) >= 10 * MICROS_PER_USD or micros == 0:
            places = 2
        elif abs(micros) >= 100:
            places = 4
        else:
            places = 6  # a fraction of a cent (a tiny local run) must never read as $0.0000
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_EVEN)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.{places}f}"
