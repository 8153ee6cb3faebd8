"""Turning a request into the routes to try: the chosen model, its fallbacks or every model of
its task, each with its own checked parameters, price, estimate and key; and why others were left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from core import generations, model_library
from core.credentials import operator_credentials
from core.errors import CreatorError, InvalidInput
from core.params import validate_params
from core.pricing import PriceEntry, cost_of, prices_in_force, worst_case_usage
from core.providers import ProviderRegistry
from core.router import BreakerKey, Route, order_routes
from core.settings import Settings
from core.types import ModelRef, Usage
from db.schema import attempts

ModelLookup = Callable[[str], ModelRef]


def plan_routes(
    conn: Connection,
    registry: ProviderRegistry,
    catalog: list[PriceEntry],
    settings: Settings,
    chosen: ModelRef,
    params: dict[str, Any],
    prompt: str,
    policy: str,
) -> list[Route]:
    """The routes to try in order. InvalidInput saying why when none is usable."""
    if policy == "model":
        names = [chosen.name, *model_library.get_fallbacks(conn, chosen.name)]
        refs = [model_library.get_model(conn, n) for n in names]
    else:
        refs = [r for r in model_library.list_models(conn) if r.task == chosen.task]
        refs.sort(key=lambda r: r.name != chosen.name)  # among equals, the chosen one first
    routes: list[Route] = []
    reasons: list[str] = []
    for ref in refs:
        try:
            route = _route(conn, registry, catalog, settings, ref, params, prompt, ref == chosen)
        except CreatorError as exc:
            reasons.append(f"{ref.name}: {exc.message}")
            continue
        routes.append(route)
    if not routes:
        raise InvalidInput("Nothing can run this request. " + " ".join(reasons))
    latencies = recent_latencies(conn, [r.key for r in routes]) if policy == "fastest" else None
    return order_routes(routes, policy, latencies)


def _route(
    conn: Connection,
    registry: ProviderRegistry,
    catalog: list[PriceEntry],
    settings: Settings,
    ref: ModelRef,
    params: dict[str, Any],
    prompt: str,
    is_chosen: bool,
) -> Route:
    provider = registry.get(ref.provider)
    spec = provider.describe(ref)
    # The chosen model's parameters were checked already; a stand-in takes those it understands.
    own = params if is_chosen else {k: v for k, v in params.items() if spec.param(k)}
    checked = validate_params(spec, own)
    today = datetime.now(UTC).date()
    prices = prices_in_force(catalog, ref.provider, ref.name, today, checked)
    if not prices and not settings.allow_unpriced_models:
        raise InvalidInput(
            f"No price is in force for {ref.name}; an operator must add one to the price catalog "
            "(or allow unpriced models) before it can be used."
        )
    credentials = None
    if not provider.local:
        credentials = operator_credentials(settings, ref.provider)
        if credentials is None:
            raise InvalidInput(f"No {ref.provider} key is set, so {ref.name} cannot be used.")
    estimate = estimate_cost(conn, ref, prices, checked, prompt)
    return Route(ref, spec, checked, prices, credentials, estimate)


def estimate_cost(
    conn: Connection, ref: ModelRef, prices: list[PriceEntry], params: dict[str, Any], prompt: str
) -> int | None:
    """The expected (worst-case where unknowable) cost in micro-USD; None when it cannot be known."""
    if not prices:
        return None
    usage = worst_case_usage(str(ref.task), params, prompt)
    if any(p.unit == "gpu_hour" for p in prices):
        per_step = generations.recent_gpu_seconds_per_step(conn, ref.name)
        if per_step is None:
            return None  # a local model's first run: its speed on this machine is not known yet
        steps = float(params.get("steps") or 1)
        usage = Usage(**{**usage.__dict__, "gpu_seconds": per_step * steps})
    return cost_of(prices, usage)


def recent_latencies(conn: Connection, keys: list[BreakerKey], window: int = 100) -> dict[BreakerKey, float]:
    """Median latency (ms) of each provider+model's recent successful attempts."""
    result: dict[BreakerKey, float] = {}
    for provider, model in keys:
        rows = conn.execute(
            select(attempts.c.latency_ms)
            .where(
                attempts.c.provider == provider,
                attempts.c.model == model,
                attempts.c.outcome == "succeeded",
            )
            .order_by(attempts.c.started_at.desc())
            .limit(window)
        ).scalars()
        values = list(rows)
        if values:
            result[(provider, model)] = float(statistics.median(values))
    return result
