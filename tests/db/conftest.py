"""Studios on a fresh database (SQLite and PostgreSQL) with instant providers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.composition import build_studio
from core.credits import ledger_totals
from core.pricing import parse_catalog
from core.providers import ProviderRegistry
from core.settings import Settings
from core.studio import Studio
from core.types import Role, Task
from db.schema import budget_periods, credit_accounts
from tests.support.instant_provider import InstantProvider


@pytest.fixture
def provider() -> InstantProvider:
    return InstantProvider()


@pytest.fixture
def studio(database_url: str, tmp_path: Path, provider: InstantProvider) -> Iterator[Studio]:
    settings = Settings(
        CREATOR_HOME=str(tmp_path / "home"), DATABASE_URL=database_url, CREATOR_RETRY_MAX_WAIT_S=0
    )
    studio = build_studio(settings, registry=ProviderRegistry({"diffusers": lambda: provider}))
    studio.add_model("stabilityai/sd-turbo", name="turbo")
    yield studio
    studio.engine.dispose()


# A hosted model at a published per-image price: its estimate (the worst case) is exactly $0.04.
FOUR_CENTS_AN_IMAGE = """
[[price]]
provider = "replicate"
model = "*"
unit = "image"
usd = "0.04"
effective_from = "2000-01-01"
"""


@pytest.fixture
def vendor() -> InstantProvider:
    return InstantProvider(name="replicate", local=False)


@pytest.fixture
def priced(database_url: str, tmp_path: Path, vendor: InstantProvider) -> Iterator[Studio]:
    """A Studio whose model `flux` costs $0.04 an image, an owner of Acme and a project 'Trailer'.

    After the test, every credit account equals the sum of its ledger and nothing is negative.
    """
    settings = Settings(
        CREATOR_HOME=str(tmp_path / "home"),
        DATABASE_URL=database_url,
        CREATOR_RETRY_MAX_WAIT_S=0,
        CREATOR_PROVIDER_KEYS={"replicate": "r8-test-key-0000"},
        CREATOR_PLATFORM_MARKUP="1.0",
    )
    studio = build_studio(settings, registry=ProviderRegistry({"replicate": lambda: vendor}))
    studio.catalog = parse_catalog(FOUR_CENTS_AN_IMAGE)
    studio.add_model(
        "black-forest-labs/flux-schnell", name="flux", provider="replicate", task=Task.TEXT_TO_IMAGE
    )
    owner = studio.create_user("owner@example.com", "correct horse battery", "Acme", Role.OWNER)
    studio.create_project(owner, "Trailer")
    yield studio
    assert_money_is_consistent(studio)
    studio.engine.dispose()


def assert_money_is_consistent(studio: Studio) -> None:
    """Balances equal their ledgers; no balance, held amount or spending is negative."""
    with studio.engine.connect() as conn:
        for account in conn.execute(select(credit_accounts)).all():
            totals = ledger_totals(conn, account.org_id)
            assert (account.balance_micros, account.held_micros) == tuple(totals)
            assert 0 <= account.held_micros <= account.balance_micros
        for period in conn.execute(select(budget_periods)).all():
            assert period.spent_micros >= 0 and period.held_micros >= 0
