"""Budgets and credits hold under concurrency, on SQLite and on PostgreSQL: 200 generations at once
against room for 25 — exactly 25 succeed, the vendor is called 25 times, $1.00 is recorded and
nothing stays held. (The `priced` fixture checks afterwards that every balance equals its ledger
and that nothing is negative.)"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.accounts import Principal
from core.composition import build_studio
from core.errors import BudgetExceeded, InsufficientCredits, ProviderError
from core.generations import GenerationInfo
from core.pricing import parse_catalog
from core.providers import ProviderRegistry
from core.settings import Settings
from core.studio import Studio
from core.types import (
    CancelToken,
    ModelRef,
    ModelSpec,
    Output,
    ParamSpec,
    ProgressCallback,
    ProviderRequest,
    ProviderResult,
    Role,
    Task,
    Usage,
)
from db.schema import budget_periods, generations, holds
from tests.db.conftest import assert_money_is_consistent
from tests.support.instant_provider import InstantProvider

GENERATIONS, THREADS = 200, 32
DOLLAR = 1_000_000


class SlowVendor(InstantProvider):
    """The instant provider, slowed to 5 ms a call so that many holds are open at once."""

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        time.sleep(0.005)
        return super().generate(request, progress=progress, cancel=cancel)


@pytest.fixture
def vendor() -> InstantProvider:
    return SlowVendor(name="replicate", local=False)


def generate_all(studio: Studio, principal: Principal, model: str) -> tuple[list[GenerationInfo], int]:
    """Run GENERATIONS generations on THREADS threads; the ones that succeeded and how many were
    refused. Any other error fails the test."""
    request = {"project": "Trailer", "model": model, "prompt": "a fox"}
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [
            pool.submit(studio.generate, principal, {**request, "seed": n}) for n in range(GENERATIONS)
        ]
    done, refused = [], 0
    for future in futures:
        try:
            done.append(future.result())
        except (BudgetExceeded, InsufficientCredits):
            refused += 1
    return done, refused


def recorded(studio: Studio) -> dict[str, Any]:
    with studio.engine.connect() as conn:
        return {
            "generations": conn.execute(select(func.count()).select_from(generations)).scalar_one(),
            "cost": conn.execute(select(func.sum(generations.c.actual_cost_micros))).scalar_one(),
            "spent": conn.execute(select(func.sum(budget_periods.c.spent_micros))).scalar_one(),
            "budget_held": conn.execute(select(func.sum(budget_periods.c.held_micros))).scalar_one(),
            "open_holds": conn.execute(
                select(func.count()).select_from(holds).where(holds.c.status == "held")
            ).scalar_one(),
        }


def test_200_parallel_generations_against_a_one_dollar_project_budget(
    priced: Studio, vendor: InstantProvider
) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", DOLLAR)
    done, refused = generate_all(priced, owner, "flux")
    assert (len(done), refused) == (25, 175)
    assert vendor.calls == 25
    assert recorded(priced) == {
        "generations": 25,
        "cost": DOLLAR,
        "spent": DOLLAR,
        "budget_held": 0,
        "open_holds": 0,
    }


def test_200_parallel_generations_against_a_one_dollar_credit_balance(
    priced: Studio, vendor: InstantProvider
) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_billing_mode("Acme", "platform")  # the fixture's markup is 1.0
    priced.grant_credits("Acme", DOLLAR, "test")
    done, refused = generate_all(priced, owner, "flux")
    assert (len(done), refused) == (25, 175)
    assert vendor.calls == 25
    assert tuple(priced.credit_balance("Acme")) == (0, 0)
    assert recorded(priced)["cost"] == DOLLAR
    assert recorded(priced)["open_holds"] == 0


class MeteredVendor:
    """A hosted sound-effect vendor billed per second, whose sounds have a random length up to the
    duration asked for: the actual cost of each call is unknown until it returns."""

    name = "sfx"
    local = False

    def __init__(self, seed: int) -> None:
        self.calls = 0
        self.billed: list[float] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        return ModelRef(source.rsplit("/", 1)[-1], self.name, source, Task.SOUND_EFFECT)

    def describe(self, model: ModelRef) -> ModelSpec:
        return ModelSpec(Task.SOUND_EFFECT, (ParamSpec("duration_s", "float", 10.0, 0.5, 10.0),))

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        with self._lock:
            self.calls += 1
            seconds = round(self._random.uniform(0.5, float(request.params["duration_s"])), 3)
            self.billed.append(seconds)
        time.sleep(0.005)
        wav = b"RIFF\x00\x00\x00\x00WAVE"
        return ProviderResult([Output(wav, "audio/wav", duration_s=seconds)], Usage(audio_seconds=seconds))


PER_SECOND = """
[[price]]
provider = "sfx"
model = "*"
unit = "audio_second"
usd = "0.004"
effective_from = "2000-01-01"
"""


@pytest.fixture
def metered(database_url: str, tmp_path: Path) -> Iterator[tuple[Studio, MeteredVendor]]:
    vendor = MeteredVendor(seed=random.randrange(1_000_000))
    settings = Settings(
        CREATOR_HOME=str(tmp_path / "home"),
        DATABASE_URL=database_url,
        CREATOR_PROVIDER_KEYS={"sfx": "sfx-key-0000"},
        CREATOR_PLATFORM_MARKUP="1.0",
    )
    studio = build_studio(settings, registry=ProviderRegistry({"sfx": lambda: vendor}))
    studio.catalog = parse_catalog(PER_SECOND)  # 10 s at most × $0.004: $0.04 held per call
    studio.add_model("vendor/whoosh", provider="sfx")
    owner = studio.create_user("owner@example.com", "correct horse battery", "Acme", Role.OWNER)
    studio.create_project(owner, "Trailer")
    yield studio, vendor
    assert_money_is_consistent(studio)
    studio.engine.dispose()


def test_with_random_actual_costs_the_vendor_spend_never_exceeds_the_budget(metered) -> None:
    studio, vendor = metered
    owner = studio.principal("owner@example.com")
    studio.set_budget(owner, "project", "Trailer", DOLLAR)
    studio.set_billing_mode("Acme", "platform")
    studio.grant_credits("Acme", DOLLAR, "test")
    done, refused = generate_all(studio, owner, "whoosh")
    vendor_spend = sum(int(Decimal(str(s)) * 4000) for s in vendor.billed)  # $0.004/s in micro-USD
    assert len(done) >= 25 and len(done) + refused == GENERATIONS
    assert vendor.calls == len(done)
    assert vendor_spend <= DOLLAR
    totals = recorded(studio)
    assert totals["cost"] == totals["spent"] == vendor_spend
    assert (totals["budget_held"], totals["open_holds"]) == (0, 0)
    assert tuple(studio.credit_balance("Acme")) == (DOLLAR - vendor_spend, 0)


class FlakyVendor(SlowVendor):
    """Fails one call in three (the vendor's fault, not retried), so holds are released as well."""

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        if (request.seed or 0) % 3 == 0:
            time.sleep(0.005)
            raise ProviderError("The vendor fell over.", retryable=False)
        return super().generate(request, progress=progress, cancel=cancel)


def test_failures_in_the_crowd_give_their_holds_back(priced: Studio) -> None:
    vendor = FlakyVendor(name="replicate", local=False)
    priced.registry = ProviderRegistry({"replicate": lambda: vendor})
    owner = priced.principal("owner@example.com")
    ann = priced.create_user("ann@example.com", "correct horse battery", "Acme", Role.CREATOR)
    # Three budgets per generation, two members with budgets of their own: rows locked in mixed sets.
    priced.set_budget(owner, "org", None, 10 * DOLLAR)
    priced.set_budget(owner, "project", "Trailer", DOLLAR)
    for member in ("owner@example.com", "ann@example.com"):
        priced.set_budget(owner, "member", member, 10 * DOLLAR)
    priced.set_billing_mode("Acme", "platform")
    priced.grant_credits("Acme", DOLLAR, "test")
    request = {"project": "Trailer", "model": "flux", "prompt": "a fox"}
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [
            pool.submit(priced.generate, (owner, ann)[n % 2], {**request, "seed": n})
            for n in range(GENERATIONS)
        ]
    outcomes = {"done": 0, "refused": 0, "failed": 0}
    for future in futures:
        try:
            future.result()
            outcomes["done"] += 1
        except (BudgetExceeded, InsufficientCredits):
            outcomes["refused"] += 1
        except ProviderError:
            outcomes["failed"] += 1
    totals = recorded(priced)
    assert 0 < outcomes["done"] <= 25 and outcomes["failed"] > 0
    assert totals["cost"] == outcomes["done"] * 40_000
    assert totals["spent"] == 3 * totals["cost"]  # the organization's, the project's and a member's
    assert totals["generations"] == outcomes["done"] + outcomes["failed"]
    assert (totals["budget_held"], totals["open_holds"]) == (0, 0)
    assert tuple(priced.credit_balance("Acme")) == (DOLLAR - outcomes["done"] * 40_000, 0)
