"""The router: retries where it helps, falls back where it may, and stops calling a broken provider."""

from __future__ import annotations

import pytest

from core.errors import (
    Canceled,
    ContentRefused,
    ProviderAuthFailed,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from core.router import AttemptRecord, CircuitBreaker, Route, Router, order_routes
from core.types import CancelToken, ModelRef, ModelSpec, ProviderResult, Task, Usage


def _route(name: str, provider: str = "p", estimate: int | None = None) -> Route:
    return Route(
        ModelRef(name, provider, name, Task.TEXT_TO_IMAGE),
        ModelSpec(Task.TEXT_TO_IMAGE, ()),
        {},
        estimate=estimate,
    )


class Script:
    """Answers each call from a per-model script of errors, then succeeds."""

    def __init__(self, **errors: list[Exception]) -> None:
        self.errors = {k: list(v) for k, v in errors.items()}
        self.calls: list[str] = []

    def __call__(self, route: Route) -> ProviderResult:
        self.calls.append(route.model.name)
        queue = self.errors.get(route.model.name, [])
        if queue:
            raise queue.pop(0)
        return ProviderResult([], Usage(), info={"by": route.model.name})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(router: Router, routes: list[Route], script: Script) -> tuple[Route, list[AttemptRecord]]:
    records: list[AttemptRecord] = []
    route, _ = router.run(routes, script, records.append, CancelToken())
    return route, records


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def router(sleeps: list[float]) -> Router:
    return Router(
        CircuitBreaker(failures=3, cooldown_s=30), attempts_per_route=2, max_wait_s=10, sleep=sleeps.append
    )


@pytest.mark.parametrize(
    "error", [ProviderUnavailable("500"), ProviderTimeout("slow"), ProviderAuthFailed("bad key")]
)
def test_falls_back_to_the_next_provider_on_a_provider_failure(router: Router, error: Exception) -> None:
    script = Script(a=[error, error])
    route, records = _run(router, [_route("a"), _route("b")], script)
    assert route.model.name == "b"
    assert [r.outcome for r in records][-1] == "succeeded"
    assert records[0].error_code == error.code


def test_retries_the_same_provider_first_and_waits_for_retry_after(
    router: Router, sleeps: list[float]
) -> None:
    script = Script(a=[ProviderRateLimited("slow down", retry_after=3.0)])
    route, records = _run(router, [_route("a"), _route("b")], script)
    assert route.model.name == "a"
    assert script.calls == ["a", "a"]
    assert sleeps == [3.0]
    assert [r.number for r in records] == [1, 2]


def test_a_long_retry_after_goes_straight_to_the_fallback(router: Router, sleeps: list[float]) -> None:
    script = Script(a=[ProviderRateLimited("quota", retry_after=600)])
    route, _ = _run(router, [_route("a"), _route("b")], script)
    assert route.model.name == "b"
    assert sleeps == []


def test_auth_failure_is_not_retried_on_the_same_provider(router: Router) -> None:
    script = Script(a=[ProviderAuthFailed("bad key")])
    _run(router, [_route("a"), _route("b")], script)
    assert script.calls == ["a", "b"]


@pytest.mark.parametrize("error", [ProviderBadRequest("bad size"), ContentRefused("policy")])
def test_bad_request_and_content_refusal_never_go_elsewhere(router: Router, error: Exception) -> None:
    script = Script(a=[error])
    with pytest.raises(type(error)):
        _run(router, [_route("a"), _route("b")], script)
    assert script.calls == ["a"]


def test_the_last_error_is_raised_when_every_route_fails(router: Router) -> None:
    script = Script(a=[ProviderUnavailable("a down")] * 2, b=[ProviderTimeout("b slow")] * 2)
    with pytest.raises(ProviderTimeout, match="b slow"):
        _run(router, [_route("a"), _route("b")], script)
    assert script.calls == ["a", "a", "b", "b"]


def test_breaker_opens_after_repeated_failures_and_skips_the_provider(sleeps: list[float]) -> None:
    clock = Clock()
    router = Router(
        CircuitBreaker(failures=3, cooldown_s=30, clock=clock), attempts_per_route=1, sleep=sleeps.append
    )
    for _ in range(3):
        _run(router, [_route("a"), _route("b")], Script(a=[ProviderUnavailable("down")]))
    assert router.breaker.state(("p", "a")) == "open"
    script = Script()
    route, records = _run(router, [_route("a"), _route("b")], script)
    assert route.model.name == "b"
    assert script.calls == ["b"]
    assert records[0].outcome == "skipped" and records[0].error_code == "circuit_open"


def test_breaker_lets_one_probe_through_after_the_cool_down_and_closes_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, cooldown_s=30, clock=clock)
    key = ("p", "a")
    breaker.failure(key)
    breaker.failure(key)
    assert not breaker.allow(key)
    clock.now = 31
    assert breaker.state(key) == "half-open"
    assert breaker.allow(key)
    assert not breaker.allow(key)  # only one probe at a time
    breaker.success(key)
    assert breaker.state(key) == "closed"


def test_a_failed_probe_reopens_the_breaker_for_another_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown_s=30, clock=clock)
    key = ("p", "a")
    breaker.failure(key)
    clock.now = 31
    assert breaker.allow(key)
    breaker.failure(key)
    assert breaker.state(key) == "open"
    clock.now = 60
    assert breaker.state(key) == "open"
    clock.now = 62
    assert breaker.state(key) == "half-open"


def test_bad_requests_do_not_trip_the_breaker(router: Router) -> None:
    for _ in range(5):
        with pytest.raises(ProviderBadRequest):
            _run(router, [_route("a")], Script(a=[ProviderBadRequest("bad")]))
    assert router.breaker.state(("p", "a")) == "closed"


def test_cancel_stops_before_the_next_route(router: Router) -> None:
    token = CancelToken()

    def call(route: Route) -> ProviderResult:
        token.cancel()
        raise ProviderUnavailable("down")

    with pytest.raises(Canceled):
        router.run([_route("a"), _route("b")], call, lambda r: None, token)


def test_routes_order_by_policy() -> None:
    a, b, c = _route("a", estimate=300), _route("b", estimate=100), _route("c", estimate=None)
    assert [r.model.name for r in order_routes([a, b, c], "model")] == ["a", "b", "c"]
    assert [r.model.name for r in order_routes([a, b, c], "cheapest")] == ["b", "a", "c"]
    latencies = {("p", "a"): 50.0, ("p", "c"): 20.0}
    assert [r.model.name for r in order_routes([a, b, c], "fastest", latencies)] == ["c", "a", "b"]
