"""All configuration in one place, read from the environment and `.env`; defaults need nothing."""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Creator Workspace settings. Every field has a default that works on a fresh machine."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    creator_home: Path = Field(default=Path("~/.creator"), alias="CREATOR_HOME")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    storage_dir: Path | None = Field(default=None, alias="CREATOR_STORAGE_DIR")
    workspace_host: str = Field(default="127.0.0.1", alias="CREATOR_WORKSPACE_HOST")
    workspace_port: int = Field(default=7860, alias="CREATOR_WORKSPACE_PORT")
    analytics_host: str = Field(default="127.0.0.1", alias="CREATOR_ANALYTICS_HOST")
    analytics_port: int = Field(default=8501, alias="CREATOR_ANALYTICS_PORT")
    # What an hour of local GPU time costs the operator (power, hardware), so local and hosted
    # runs can be compared in one currency. Overridable per model in the price catalog.
    local_gpu_hourly_usd: str = Field(default="0.60", alias="CREATOR_LOCAL_GPU_HOURLY_USD")
    # A model with no price in force is refused unless the operator allows it explicitly.
    allow_unpriced_models: bool = Field(default=False, alias="CREATOR_ALLOW_UNPRICED_MODELS")
    # The operator's own vendor keys, by provider, as JSON: {"openai": "sk-…"} or a list of keys.
    provider_keys: dict[str, list[SecretStr]] = Field(default_factory=dict, alias="CREATOR_PROVIDER_KEYS")
    # Another endpoint for a provider (a proxy, a self-hosted gateway), as JSON by provider.
    provider_base_urls: dict[str, str] = Field(default_factory=dict, alias="CREATOR_PROVIDER_BASE_URLS")
    # The router: attempts per provider on retryable errors, and the circuit breaker.
    retry_attempts: int = Field(default=2, ge=1, le=5, alias="CREATOR_RETRY_ATTEMPTS")
    retry_max_wait_s: float = Field(default=10.0, ge=0, le=120, alias="CREATOR_RETRY_MAX_WAIT_S")
    breaker_failures: int = Field(default=3, ge=1, le=100, alias="CREATOR_BREAKER_FAILURES")
    breaker_cooldown_s: float = Field(default=30.0, ge=0, le=3600, alias="CREATOR_BREAKER_COOLDOWN_S")
    # Money. A hold not settled within this time belongs to a process that died: it is released.
    # It must outlast the slowest generation (a late settle still records the spending).
    hold_ttl_s: int = Field(default=900, ge=1, le=7 * 24 * 3600, alias="CREATOR_HOLD_TTL_S")
    # Platform-paid organizations are charged the catalog price × this markup in credits.
    platform_markup: Decimal = Field(default=Decimal("1.2"), gt=0, le=100, alias="CREATOR_PLATFORM_MARKUP")
    # What is held when a cost cannot be estimated yet (a local model's first run on this
    # machine, an allowed unpriced model): holding $0 would let such runs through any budget.
    unknown_estimate_usd: Decimal = Field(
        default=Decimal("0.05"), ge=0, le=1000, alias="CREATOR_UNKNOWN_ESTIMATE_USD"
    )
    # Where budget alerts go besides the apps: a webhook (JSON POST) and e-mail over SMTP
    # (smtp://user:password@host:port, or smtps:// for TLS from the start).
    alert_webhook_url: str | None = Field(default=None, alias="CREATOR_ALERT_WEBHOOK_URL")
    smtp_url: SecretStr | None = Field(default=None, alias="CREATOR_SMTP_URL")
    alert_email_to: str | None = Field(default=None, alias="CREATOR_ALERT_EMAIL_TO")
    alert_email_from: str = Field(default="creator-workspace@localhost", alias="CREATOR_ALERT_EMAIL_FROM")

    @field_validator("provider_keys", mode="before")
    @classmethod
    def _keys_as_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: v if isinstance(v, list) else [v] for k, v in value.items()}
        return value

    @cached_property
    def home(self) -> Path:
        """The data directory, expanded and created."""
        path = self.creator_home.expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_database_url(self) -> str:
        """`DATABASE_URL`, or an SQLite file in the data directory."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{self.home / 'creator.db'}"

    @property
    def resolved_storage_dir(self) -> Path:
        """Where blobs (images, audio) are kept on local disk."""
        path = (self.storage_dir or self.home / "blobs").expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path


def normalize_database_url(url: str) -> str:
    """Make a Supabase/Heroku-style `postgres://` URL use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
