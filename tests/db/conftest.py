"""A Studio on a fresh database (SQLite and PostgreSQL) with an instant provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.composition import build_studio
from core.providers import ProviderRegistry
from core.settings import Settings
from core.studio import Studio
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
