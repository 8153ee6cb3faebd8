"""Choosing and calling providers: order the candidates, retry, fall back, and trip breakers.

Decisions are pure functions over plain data (`order_routes`, `CircuitBreaker` with an injected
clock); `Router.run` is the only place that calls providers, and it reports every attempt.

On a failure the ProviderError says what makes sense: `retryable` — ask the same provider again
(bounded attempts, exponential backoff with jitter, honouring Retry-After up to a cap);
`fallback` — try the next candidate. A bad request or a content refusal does neither.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from core.errors import Canceled, ProviderError, ProviderUnavailable
from core.pricing import PriceEntry
from core.types import CancelToken, Credentials, ModelRef, ModelSpec, ProviderResult

BreakerKey = tuple[str, str]


@dataclass(frozen=True)
class Route:
    """One way to serve a request: a model, its checked parameters, prices and key."""

    model: ModelRef
    spec: ModelSpec
    params: dict[str, Any]
    prices: list[PriceEntry] = field(default_factory=list)
    credentials: Credentials | None = None
    estimate: int | None = None

    @property
    def key(self) -> BreakerKey:
        return (self.model.provider, self.model.name)


@dataclass(frozen=True)
class AttemptRecord:
    """One call to a provider (or one skipped because its breaker was open)."""

    provider: str
    model: str
    number: int
    started_at: datetime
    latency_ms: int
    outcome: str  # succeeded, failed, canceled, skipped
    error_code: str | None = None
    http_status: int | None = None


def order_routes(
    routes: list[Route], policy: str, latencies_ms: dict[BreakerKey, float] | None = None
) -> list[Route]:
    """Routes in the order to try: as given ('model'), cheapest first, or fastest first.

    Unknown estimates and latencies go last, keeping the given order among equals.
    """
    if policy == "cheapest":
        return sorted(routes, key=lambda r: (r.estimate is None, r.estimate or 0))
    if policy == "fastest":
        latencies = latencies_ms or {}
        return sorted(routes, key=lambda r: (r.key not in latencies, latencies.get(r.key, 0.0)))
    return list(routes)


class CircuitBreaker:
    """Per provider+model: opens after `failures` failures in a row, lets one probe through after
    `cooldown_s` (half-open), and closes again on a success."""

    def __init__(
        self, failures: int = 3, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ):
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failed: dict[BreakerKey, int] = {}
        self._opened_at: dict[BreakerKey, float] = {}
        self._probing: set[BreakerKey] = set()
        self._lock = threading.Lock()

    def state(self, key: BreakerKey) -> str:
        """closed, open or half-open."""
        with self._lock:
            return self._state(key)

    def _state(self, key: BreakerKey) -> str:
        opened = self._opened_at.get(key)
        if opened is None:
            return "closed"
        return "half-open" if self._clock() - opened >= self.cooldown_s else "open"

    def allow(self, key: BreakerKey) -> bool:
        """May a call go to `key` now? In half-open, only one probe at a time."""
        with self._lock:
            state = self._state(key)
            if state == "closed":
                return True
            if state == "half-open" and key not in self._probing:
                self._probing.add(key)
                return True
            return False

    def success(self, key: BreakerKey) -> None:
        with self._lock:
            self._failed.pop(key, None)
            self._opened_at.pop(key, None)
            self._probing.discard(key)

    def failure(self, key: BreakerKey) -> None:
        with self._lock:
            self._probing.discard(key)
            count = self._failed.get(key, 0) + 1
            self._failed[key] = count
            if count >= self.failures or key in self._opened_at:
                self._opened_at[key] = self._clock()  # (re)open: a failed probe restarts the cool-down


class Router:
    """Runs a request along its routes with retries, fallback and circuit breakers."""

    def __init__(
        self,
        breaker: CircuitBreaker | None = None,
        attempts_per_route: int = 2,
        max_wait_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.breaker = breaker or CircuitBreaker()
        self.attempts_per_route = attempts_per_route
        self.max_wait_s = max_wait_s
        self._sleep = sleep

    def run(
        self,
        routes: list[Route],
        call: Callable[[Route], ProviderResult],
        on_attempt: Callable[[AttemptRecord], None],
        cancel: CancelToken,
    ) -> tuple[Route, ProviderResult]:
        """The first route that succeeds and its result; the last error when none does."""
        last_error: ProviderError | None = None
        number = 0
        for route in routes:
            if cancel.canceled:
                raise Canceled("Canceled before a provider was called.")
            if not self.breaker.allow(route.key):
                number += 1
                on_attempt(_record(route, number, time.perf_counter(), "skipped", "circuit_open"))
                last_error = ProviderUnavailable(
                    f"{route.model.provider} ({route.model.name}) failed repeatedly and is paused."
                )
                continue
            counter = [number]
            try:
                result = self._with_retries(route, call, on_attempt, cancel, counter)
            except ProviderError as exc:
                number = counter[0]
                last_error = exc
                if exc.fallback:
                    continue
                raise
            return route, result
        if last_error is None:
            raise ProviderUnavailable("No provider can serve this request.")
        raise last_error

    def _with_retries(
        self,
        route: Route,
        call: Callable[[Route], ProviderResult],
        on_attempt: Callable[[AttemptRecord], None],
        cancel: CancelToken,
        counter: list[int],
    ) -> ProviderResult:
        def attempt() -> ProviderResult:
            counter[0] += 1
            started = time.perf_counter()
            try:
                result = call(route)
            except Canceled:
                on_attempt(_record(route, counter[0], started, "canceled", "canceled"))
                raise
            except ProviderError as exc:
                on_attempt(_record(route, counter[0], started, "failed", exc.code, exc.status))
                if exc.retryable or exc.fallback:  # the provider's fault, not the request's
                    self.breaker.failure(route.key)
                raise
            on_attempt(_record(route, counter[0], started, "succeeded"))
            self.breaker.success(route.key)
            return result

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts_per_route),
            wait=self._wait,
            retry=retry_if_exception(lambda e: self._should_retry(e, route, cancel)),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(attempt)

    def _should_retry(self, exc: BaseException, route: Route, cancel: CancelToken) -> bool:
        if not isinstance(exc, ProviderError) or not exc.retryable or cancel.canceled:
            return False
        if exc.retry_after is not None and exc.retry_after > self.max_wait_s:
            return False  # waiting that long is worse than trying another provider
        return self.breaker.state(route.key) == "closed"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_wait_s)
        return min(wait_exponential_jitter(multiplier=0.5, max=self.max_wait_s)(state), self.max_wait_s)


def _record(
    route: Route,
    number: int,
    started: float,
    outcome: str,
    error_code: str | None = None,
    http_status: int | None = None,
) -> AttemptRecord:
    elapsed = time.perf_counter() - started
    started_at = datetime.now(UTC) - timedelta(seconds=elapsed)
    return AttemptRecord(
        route.model.provider,
        route.model.name,
        number,
        started_at,
        int(elapsed * 1000),
        outcome,
        error_code,
        http_status,
    )
