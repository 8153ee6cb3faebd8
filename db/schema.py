"""The tables. Money is BIGINT micro-USD, time is timezone-aware UTC, tenant rows carry org_id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def new_id() -> str:
    """A fresh random id (32 hex characters), the same on every database."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)


def _id() -> Column:
    return Column("id", String(32), primary_key=True, default=new_id)


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, default=utcnow)


organizations = Table(
    "organizations",
    metadata,
    _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("billing_mode", String(20), nullable=False, default="byok"),
    _created(),
)

users = Table(
    "users",
    metadata,
    _id(),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("display_name", String(200), nullable=False, default=""),
    _created(),
)

memberships = Table(
    "memberships",
    metadata,
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(20), nullable=False),
    _created(),
)

projects = Table(
    "projects",
    metadata,
    _id(),
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_by", String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    _created(),
    UniqueConstraint("org_id", "name", name="uq_projects_org_id_name"),
)

# Models an operator made available (a Hub id, a local folder or a vendor model id), by our name.
models = Table(
    "models",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("provider", String(100), nullable=False),
    Column("source", Text, nullable=False),
    Column("task", String(40), nullable=False),
    # Other models (by our name) to try, in order, when this one fails with a retryable error.
    Column("fallbacks", JSON, nullable=False, default=list),
    _created(),
)

generations = Table(
    "generations",
    metadata,
    _id(),
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", String(32), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(20), nullable=False),
    Column("provider", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    # The model the creator asked for; `model` is the one that served (they differ after a fallback).
    Column("requested_model", String(200), nullable=True),
    Column("modality", String(20), nullable=False),
    Column("task", String(40), nullable=False),
    Column("prompt", Text, nullable=False),
    Column("negative_prompt", Text, nullable=False, default=""),
    Column("parameters", JSON, nullable=False, default=dict),
    Column("seed", BigInteger, nullable=True),
    Column("estimated_cost_micros", BigInteger, nullable=True),
    Column("actual_cost_micros", BigInteger, nullable=True),
    # True when no price was in force: such a generation is counted apart, never as $0.
    Column("unpriced", Boolean, nullable=False, default=False),
    Column("usage", JSON, nullable=True),
    # The reservation made for it (holds.id) when a budget or the credit balance applied.
    Column("hold_id", String(32), nullable=True),
    _created(),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("duration_ms", Integer, nullable=True),
    Column("error_code", String(40), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_generations_org_created", "org_id", "created_at"),
    Index("ix_generations_project_created", "project_id", "created_at"),
)

assets = Table(
    "assets",
    metadata,
    _id(),
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", String(32), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "generation_id",
        String(32),
        ForeignKey("generations.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("parent_asset_id", String(32), ForeignKey("assets.id", ondelete="SET NULL"), nullable=True),
    Column("kind", String(20), nullable=False),
    Column("storage_key", Text, nullable=False),
    Column("mime", String(100), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("tags", JSON, nullable=False, default=list),
    Column("favorite", Boolean, nullable=False, default=False),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    _created(),
    Index("ix_assets_project_created", "project_id", "created_at"),
    Index("ix_assets_generation", "generation_id"),
)

# Every call the router made to a provider, for health, latency and fallback analytics.
attempts = Table(
    "attempts",
    metadata,
    _id(),
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("generation_id", String(32), ForeignKey("generations.id", ondelete="CASCADE"), nullable=True),
    Column("provider", String(100), nullable=False),
    Column("model", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("latency_ms", Integer, nullable=False),
    # succeeded, failed, canceled, or skipped (circuit open)
    Column("outcome", String(20), nullable=False),
    Column("error_code", String(40), nullable=True),
    Column("http_status", Integer, nullable=True),
    Index("ix_attempts_org_started", "org_id", "started_at"),
    Index("ix_attempts_provider_model_started", "provider", "model", "started_at"),
)


# --- money: budgets, reservations (holds), alerts and credits ----------------------------------

# A hard spending limit on an organization, a project or a member, per period.
budgets = Table(
    "budgets",
    metadata,
    _id(),
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("scope", String(20), nullable=False),  # org, project, member
    # What the budget limits: the organization's, project's or member's (user's) id.
    Column("target_id", String(32), nullable=False),
    Column("project_id", String(32), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("period", String(20), nullable=False),  # monthly, weekly, none
    Column("limit_micros", BigInteger, nullable=False),
    # Percentages of the limit that raise an alert, once each per period.
    Column("thresholds", JSON, nullable=False, default=lambda: [50, 80, 100]),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, default=utcnow),
    UniqueConstraint("org_id", "scope", "target_id", name="uq_budgets_org_scope_target"),
    CheckConstraint("limit_micros >= 0", name="limit_not_negative"),
)

# What a budget has spent and holds in one period; the row reservations update atomically.
budget_periods = Table(
    "budget_periods",
    metadata,
    Column("budget_id", String(32), ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True),
    Column("period_start", Date, primary_key=True),  # a UTC date; 1970-01-01 for period "none"
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("spent_micros", BigInteger, nullable=False, default=0),
    Column("held_micros", BigInteger, nullable=False, default=0),
    CheckConstraint("spent_micros >= 0", name="spent_not_negative"),
    CheckConstraint("held_micros >= 0", name="held_not_negative"),
)

# A reservation: the worst-case cost held before a provider is called, settled or released after.
holds = Table(
    "holds",
    metadata,
    _id(),
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("generation_id", String(32), ForeignKey("generations.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(20), nullable=False),  # held, settled, released, expired
    Column("amount_micros", BigInteger, nullable=False),  # held against each budget below
    # Held against the credit balance when the organization pays through the platform; else NULL.
    Column("credit_micros", BigInteger, nullable=True),
    # The budget periods held against: [{"id": budget id, "period": "YYYY-MM-DD", "label": …}, …].
    Column("budgets", JSON, nullable=False, default=list),
    Column("actual_micros", BigInteger, nullable=True),  # the cost it was settled to
    _created(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("amount_micros >= 0", name="amount_not_negative"),
    CheckConstraint("credit_micros >= 0", name="credit_not_negative"),
    Index("ix_holds_status_expires", "status", "expires_at"),
)

# A budget threshold reached: one row per budget, period and threshold.
alerts = Table(
    "alerts",
    metadata,
    _id(),
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("budget_id", String(32), ForeignKey("budgets.id", ondelete="CASCADE"), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("spent_micros", BigInteger, nullable=False),
    Column("limit_micros", BigInteger, nullable=False),
    Column("message", Text, nullable=False),
    _created(),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("acknowledged_by", String(32), ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    UniqueConstraint("budget_id", "period_start", "threshold", name="uq_alerts_budget_period_threshold"),
    Index("ix_alerts_org_created", "org_id", "created_at"),
)

# Prepaid credits of an organization that pays through the platform's keys.
credit_accounts = Table(
    "credit_accounts",
    metadata,
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    Column("balance_micros", BigInteger, nullable=False, default=0),
    Column("held_micros", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False, default=utcnow),
    CheckConstraint("balance_micros >= 0", name="balance_not_negative"),
    CheckConstraint("held_micros >= 0", name="held_not_negative"),
    CheckConstraint("held_micros <= balance_micros", name="held_within_balance"),
)

# Append-only: every change to a credit account, once (the idempotency key is unique).
# The account's balance is the sum of amount_micros; its held amount the sum of held_change_micros.
credit_ledger = Table(
    "credit_ledger",
    metadata,
    _id(),
    Column("org_id", String(32), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),  # grant, purchase, hold, capture, release, refund, expiry
    Column("amount_micros", BigInteger, nullable=False),
    Column("held_change_micros", BigInteger, nullable=False, default=0),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("reference", String(500), nullable=False, default=""),
    _created(),
    Index("ix_credit_ledger_org_created", "org_id", "created_at"),
)
