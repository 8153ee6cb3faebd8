"""Budgets are walls: a generation that would overspend one is refused before any vendor is called,
with a message that says which budget and by how much; thresholds raise alerts once per period."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.composition import build_studio
from core.errors import BudgetExceeded, Canceled, Forbidden, InvalidInput, NotFound, ProviderUnavailable
from core.pricing import parse_catalog
from core.providers import ProviderRegistry
from core.settings import Settings
from core.studio import Studio
from core.types import CancelToken, GenerationStatus, Role, Task
from db.schema import budget_periods, generations, holds
from tests.support.instant_provider import InstantProvider

FOX = {"project": "Trailer", "model": "flux", "prompt": "a fox"}


def _count(studio: Studio, table) -> int:
    with studio.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _held_and_spent(studio: Studio) -> tuple[int, int]:
    with studio.engine.connect() as conn:
        row = conn.execute(
            select(func.sum(budget_periods.c.held_micros), func.sum(budget_periods.c.spent_micros))
        ).one()
    return int(row[0] or 0), int(row[1] or 0)


def test_budget_blocks_generation_that_would_overspend(priced: Studio, vendor: InstantProvider) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 100_000)  # $0.10: two $0.04 images fit
    first = priced.generate(owner, FOX)
    priced.generate(owner, FOX)
    with pytest.raises(BudgetExceeded) as refused:
        priced.generate(owner, FOX)
    assert refused.value.message == (
        "This would overspend the project 'Trailer' monthly budget by $0.0200 "
        "($0.10 limit, $0.08 spent or held)."
    )
    assert vendor.calls == 2
    assert _count(priced, generations) == 2  # the refused one left no record
    assert first.hold_id is not None
    assert _held_and_spent(priced) == (0, 80_000)


def test_organization_and_member_budgets_apply_as_well(priced: Studio, vendor: InstantProvider) -> None:
    owner = priced.principal("owner@example.com")
    ann = priced.create_user("ann@example.com", "correct horse battery", "Acme", Role.CREATOR)
    priced.set_budget(owner, "member", "ann@example.com", 50_000, period="weekly")
    priced.set_budget(owner, "org", "Acme", 100_000, period="none")
    priced.generate(ann, FOX)
    with pytest.raises(BudgetExceeded, match=r"member 'ann@example.com' weekly budget by \$0.0300"):
        priced.generate(ann, FOX)
    priced.generate(owner, FOX)  # the owner has no member budget; the organization's still has room
    with pytest.raises(BudgetExceeded, match=r"organization 'Acme' budget by \$0.0200"):
        priced.generate(owner, FOX)
    assert vendor.calls == 2


def test_viewers_and_creators_cannot_set_budgets(priced: Studio) -> None:
    for role in (Role.VIEWER, Role.CREATOR):
        member = priced.create_user(f"{role}@example.com", "correct horse battery", "Acme", role)
        with pytest.raises(Forbidden):
            priced.set_budget(member, "project", "Trailer", 1_000_000)
    assert priced.budgets(priced.principal("owner@example.com")) == []


def test_a_manager_sets_budgets_and_a_bad_one_is_refused(priced: Studio) -> None:
    manager = priced.create_user("m@example.com", "correct horse battery", "Acme", Role.MANAGER)
    priced.set_budget(manager, "project", "Trailer", 1_000_000)
    with pytest.raises(NotFound):
        priced.set_budget(manager, "project", "No such project", 1_000_000)
    with pytest.raises(NotFound):
        priced.set_budget(manager, "member", "stranger@example.com", 1_000_000)
    with pytest.raises(NotFound):
        priced.set_budget(manager, "org", "Another org", 1_000_000)
    with pytest.raises(InvalidInput):
        priced.set_budget(manager, "project", "Trailer", -1)
    with pytest.raises(InvalidInput):
        priced.set_budget(manager, "project", "Trailer", 1_000_000, period="daily")
    with pytest.raises(InvalidInput):
        priced.set_budget(manager, "galaxy", "Trailer", 1_000_000)


def test_setting_a_budget_again_replaces_its_limit(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 40_000)
    priced.generate(owner, FOX)
    replaced = priced.set_budget(owner, "project", "Trailer", 80_000, thresholds=[90])
    [listed] = priced.budgets(owner)
    assert listed == replaced
    assert (listed.limit_micros, listed.spent_micros, listed.held_micros) == (80_000, 40_000, 0)
    assert (listed.remaining_micros, listed.thresholds) == (40_000, (90,))
    priced.generate(owner, FOX)
    priced.delete_budget(owner, listed.id)
    assert priced.budgets(owner) == []
    priced.generate(owner, FOX)  # nothing limits it any more


def test_headroom_is_the_tightest_budget(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    assert priced.headroom(owner, "Trailer") is None
    priced.set_budget(owner, "org", None, 5_000_000)
    priced.set_budget(owner, "project", "Trailer", 3_240_000)
    priced.generate(owner, FOX)
    room = priced.headroom(owner, "Trailer")
    assert room is not None
    assert (room.remaining_micros, room.label) == (3_200_000, "project 'Trailer' monthly budget")


def test_creators_see_their_own_member_budget_but_not_others(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    ann = priced.create_user("ann@example.com", "correct horse battery", "Acme", Role.CREATOR)
    priced.create_user("bob@example.com", "correct horse battery", "Acme", Role.CREATOR)
    priced.set_budget(owner, "member", "ann@example.com", 1_000_000)
    priced.set_budget(owner, "member", "bob@example.com", 1_000_000)
    priced.set_budget(owner, "project", "Trailer", 1_000_000)
    assert sorted(b.target for b in priced.budgets(ann)) == ["Trailer", "ann@example.com"]
    assert len(priced.budgets(owner)) == 3


def test_each_threshold_alerts_once_per_period(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 100_000)
    priced.generate(owner, FOX)  # 40%: nothing yet
    assert priced.alerts(owner) == []
    priced.generate(owner, FOX)  # 80%: both 50% and 80% were passed
    assert sorted(a.threshold for a in priced.alerts(owner)) == [50, 80]
    priced.set_budget(owner, "project", "Trailer", 120_000)
    priced.generate(owner, FOX)  # $0.12 of $0.12: 100%
    alerts = priced.alerts(owner)
    assert sorted(a.threshold for a in alerts) == [50, 80, 100]
    assert alerts[0].message == (
        "The project 'Trailer' monthly budget reached 100%: $0.12 of its $0.12 limit spent."
    )
    priced.set_budget(owner, "project", "Trailer", 200_000)
    priced.generate(owner, FOX)  # 80% of the new limit again: already alerted this period
    priced.generate(owner, FOX)  # and 100%
    assert sorted(a.threshold for a in priced.alerts(owner)) == [50, 80, 100]
    for alert in alerts:
        priced.acknowledge_alert(owner, alert.id)
    assert priced.alerts(owner, unacknowledged_only=True) == []


def test_creators_cannot_acknowledge_alerts(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    ann = priced.create_user("ann@example.com", "correct horse battery", "Acme", Role.CREATOR)
    priced.set_budget(owner, "project", "Trailer", 40_000)
    priced.generate(owner, FOX)
    [alert, *_] = priced.alerts(ann)
    with pytest.raises(Forbidden):
        priced.acknowledge_alert(ann, alert.id)


def test_a_failed_generation_gives_its_hold_back(priced: Studio, vendor: InstantProvider) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 40_000)
    vendor.fail_with = ProviderUnavailable("down", retryable=True)
    with pytest.raises(ProviderUnavailable):
        priced.generate(owner, FOX)
    [failed] = priced.generations(owner)
    assert failed.status is GenerationStatus.FAILED
    with priced.engine.connect() as conn:
        assert conn.execute(select(holds.c.status).where(holds.c.id == failed.hold_id)).scalar() == "released"
    assert _held_and_spent(priced) == (0, 0)
    vendor.fail_with = None
    priced.generate(owner, FOX)  # the whole budget is there again


def test_a_canceled_generation_gives_its_hold_back(priced: Studio) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 40_000)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Canceled):
        priced.generate(owner, FOX, cancel=token)
    assert priced.generations(owner)[0].status is GenerationStatus.CANCELED
    assert _held_and_spent(priced) == (0, 0)


TWO_VENDORS = """
[[price]]
provider = "replicate"
model = "*"
unit = "image"
usd = "0.04"
effective_from = "2000-01-01"

[[price]]
provider = "fal"
model = "pricey"
unit = "image"
usd = "0.10"
effective_from = "2000-01-01"

[[price]]
provider = "fal"
model = "cheap"
unit = "image"
usd = "0.03"
effective_from = "2000-01-01"
"""


@pytest.fixture
def two_vendors(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[Studio, InstantProvider, InstantProvider]]:
    first, second = InstantProvider(name="replicate", local=False), InstantProvider(name="fal", local=False)
    settings = Settings(
        CREATOR_HOME=str(tmp_path / "home"),
        DATABASE_URL=database_url,
        CREATOR_RETRY_MAX_WAIT_S=0,
        CREATOR_PROVIDER_KEYS={"replicate": "r8-key-0000", "fal": "fal-key-0000"},
    )
    studio = build_studio(
        settings, registry=ProviderRegistry({"replicate": lambda: first, "fal": lambda: second})
    )
    studio.catalog = parse_catalog(TWO_VENDORS)
    studio.add_model("vendor/pricey", provider="fal", task=Task.TEXT_TO_IMAGE)
    studio.add_model("vendor/cheap", provider="fal", task=Task.TEXT_TO_IMAGE)
    studio.add_model("bfl/flux", provider="replicate", task=Task.TEXT_TO_IMAGE, fallbacks=["pricey", "cheap"])
    owner = studio.create_user("owner@example.com", "correct horse battery", "Acme", Role.OWNER)
    studio.create_project(owner, "Trailer")
    yield studio, first, second
    studio.engine.dispose()


def test_a_fallback_that_could_cost_more_than_the_hold_is_not_called(two_vendors) -> None:
    studio, first, second = two_vendors
    owner = studio.principal("owner@example.com")
    studio.set_budget(owner, "project", "Trailer", 1_000_000)
    first.fail_with = ProviderUnavailable("down", retryable=True)
    result = studio.generate(owner, FOX)
    assert [r.model.name for r in second.requests] == ["cheap"]  # 'pricey' ($0.10 > $0.04 held) skipped
    assert (result.model, result.actual_cost_micros) == ("cheap", 30_000)
    assert _held_and_spent(studio) == (0, 30_000)


def test_an_unknown_estimate_holds_the_configured_floor(studio: Studio) -> None:
    # A local model's first run: its speed here is unknown, so $0.05 (CREATOR_UNKNOWN_ESTIMATE_USD) is
    # held rather than $0 — otherwise any number of first runs would slip through a budget at once.
    owner = studio.create_user("owner@example.com", "correct horse battery", "Acme", Role.OWNER)
    studio.create_project(owner, "Trailer")
    studio.set_budget(owner, "project", "Trailer", 40_000)
    request = {"project": "Trailer", "model": "turbo", "prompt": "a fox"}
    with pytest.raises(BudgetExceeded, match=r"by \$0.0100"):
        studio.generate(owner, request)
    studio.set_budget(owner, "project", "Trailer", 50_000)
    result = studio.generate(owner, request)
    assert result.actual_cost_micros == 334  # settled to what the run really cost
    assert _held_and_spent(studio) == (0, 334)


def test_an_unpriced_run_counts_what_was_held_never_zero(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        CREATOR_HOME=str(tmp_path / "home"), DATABASE_URL=database_url, CREATOR_ALLOW_UNPRICED_MODELS=True
    )
    provider = InstantProvider()
    studio = build_studio(settings, registry=ProviderRegistry({"diffusers": lambda: provider}))
    studio.catalog = []
    studio.add_model("stabilityai/sd-turbo", name="turbo")
    owner = studio.create_user("owner@example.com", "correct horse battery", "Acme", Role.OWNER)
    studio.create_project(owner, "Trailer")
    studio.set_budget(owner, "project", "Trailer", 1_000_000)
    result = studio.generate(owner, {"project": "Trailer", "model": "turbo", "prompt": "x"})
    assert result.unpriced and result.actual_cost_micros is None
    assert _held_and_spent(studio) == (0, 50_000)
    studio.engine.dispose()


def test_a_result_that_cannot_be_stored_is_still_counted(priced: Studio, vendor: InstantProvider) -> None:
    owner = priced.principal("owner@example.com")
    priced.set_budget(owner, "project", "Trailer", 1_000_000)
    (priced.storage.root / owner.org_id).write_text("a file where the organization's folder goes")
    with pytest.raises(OSError):
        priced.generate(owner, FOX)
    [failed] = priced.generations(owner)
    assert (failed.status, failed.error) == (GenerationStatus.FAILED, "The result could not be stored.")
    assert vendor.calls == 1
    assert _held_and_spent(priced) == (0, 40_000)  # the vendor was paid: the budget counts it
