"""Which vendor key a call uses: for now the operator's keys from settings (a pool per provider)."""

from __future__ import annotations

from core.settings import Settings
from core.types import Credentials


def operator_credentials(settings: Settings, provider: str) -> Credentials | None:
    """The operator's first key for `provider` with its endpoint, or None when there is none."""
    keys = settings.provider_keys.get(provider) or []
    if not keys:
        return None
    return Credentials(keys[0].get_secret_value(), settings.provider_base_urls.get(provider))
