"""Check a request's parameters against the model's declared ParamSpecs before money is spent."""

from __future__ import annotations

import math
from typing import Any

from core.errors import InvalidInput
from core.types import ModelSpec, ParamSpec


def validate_params(spec: ModelSpec, params: dict[str, Any] | None) -> dict[str, Any]:
    """Every declared parameter, defaults filled in; InvalidInput for unknown or out-of-range values."""
    given = dict(params or {})
    unknown = sorted(set(given) - {p.name for p in spec.params})
    if unknown:
        allowed = ", ".join(p.name for p in spec.params)
        raise InvalidInput(f"Unknown parameter(s) {', '.join(unknown)}; this model takes {allowed}.")
    result: dict[str, Any] = {}
    for p in spec.params:
        value = given.get(p.name)
        result[p.name] = p.default if value is None else _coerce(p, value)
    return result


def _coerce(p: ParamSpec, value: Any) -> Any:
    label = p.label or p.name
    if p.kind in ("int", "float"):
        if isinstance(value, bool):
            raise InvalidInput(f"{label} must be a number.")
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{label} must be a number, not {value!r}.") from exc
        if not math.isfinite(number):
            raise InvalidInput(f"{label} must be a finite number.")
        if p.kind == "int":
            if number != int(number):
                raise InvalidInput(f"{label} must be a whole number.")
            number = int(number)
        if p.minimum is not None and number < p.minimum:
            raise InvalidInput(f"{label} must be at least {_fmt(p.minimum)} (got {_fmt(number)}).")
        if p.maximum is not None and number > p.maximum:
            raise InvalidInput(f"{label} must be at most {_fmt(p.maximum)} (got {_fmt(number)}).")
        if p.kind == "int" and p.step and p.minimum is not None and (number - p.minimum) % p.step:
            raise InvalidInput(f"{label} must be a multiple of {_fmt(p.step)}.")
        return number
    if p.kind == "bool":
        if isinstance(value, bool):
            return value
        raise InvalidInput(f"{label} must be true or false.")
    if p.kind == "choice":
        if value not in p.choices:
            raise InvalidInput(f"{label} must be one of {', '.join(p.choices)}.")
        return value
    if not isinstance(value, str) or len(value) > 10_000:
        raise InvalidInput(f"{label} must be text of at most 10,000 characters.")
    return value


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
