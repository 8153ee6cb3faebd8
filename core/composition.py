"""The composition root: one function builds a Studio from Settings, for every app, CLI and test."""

from __future__ import annotations

from core.pricing import load_catalog
from core.providers import ProviderRegistry
from core.settings import Settings
from core.studio import Studio
from db.engine import make_engine
from db.migrate import upgrade
from db.storage import LocalStorage


def build_studio(
    settings: Settings | None = None,
    *,
    registry: ProviderRegistry | None = None,
    migrate: bool = True,
) -> Studio:
    """A ready Studio: database migrated to head, storage, providers from entry points, prices."""
    settings = settings or Settings()
    engine = make_engine(settings.resolved_database_url)
    if migrate:
        upgrade(engine)
    studio = Studio(
        settings=settings,
        engine=engine,
        storage=LocalStorage(settings.resolved_storage_dir),
        registry=registry or ProviderRegistry.from_entry_points(),
        catalog=load_catalog(local_gpu_hourly_usd=_hourly_override(settings)),
    )
    if migrate:
        studio.release_expired_holds()  # what a process that died left held
    return studio


def _hourly_override(settings: Settings) -> str | None:
    # Only an explicitly set rate replaces the catalog's figure.
    return settings.local_gpu_hourly_usd if "local_gpu_hourly_usd" in settings.model_fields_set else None
