"""Budget alerts: a threshold (50/80/100% by default) reached raises one alert per budget, period and
threshold — the table's UNIQUE constraint makes a second one a no-op — stored for both apps and
optionally sent to a webhook (JSON POST) and by e-mail (SMTP). Delivery never fails a generation:
it runs after the transaction, in the background, and its failures are logged.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import httpx
from sqlalchemy import Connection, or_, select, update

from core.accounts import ROLE_RANK, Principal
from core.budgets import usd_text
from core.errors import NotFound
from core.portable_sql import insert_or_ignore
from core.settings import Settings
from core.types import Role
from db.schema import alerts, budgets, new_id, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertInfo:
    id: str
    org_id: str
    budget_id: str
    period_start: date
    threshold: int
    spent_micros: int
    limit_micros: int
    message: str
    created_at: datetime
    acknowledged_at: datetime | None = None


def crossed(thresholds: Iterable[int], limit: int, before: int, after: int) -> list[int]:
    """The thresholds (percent of `limit`) that spending from `before` to `after` went past."""
    return [t for t in thresholds if before * 100 < t * limit <= after * 100]


def alert_message(label: str, threshold: int, spent: int, limit: int) -> str:
    return f"The {label} reached {threshold}%: {usd_text(spent)} of its {usd_text(limit)} limit spent."


def record_crossings(
    conn: Connection,
    org_id: str,
    budget_id: str,
    period_start: date,
    label: str,
    thresholds: Iterable[int],
    limit: int,
    before: int,
    after: int,
) -> list[AlertInfo]:
    """Store an alert for each threshold crossed (once per period); the ones that are new."""
    fired = []
    for threshold in crossed(thresholds, limit, before, after):
        values = {
            "id": new_id(),
            "org_id": org_id,
            "budget_id": budget_id,
            "period_start": period_start,
            "threshold": threshold,
            "spent_micros": after,
            "limit_micros": limit,
            "message": alert_message(label, threshold, after, limit),
            "created_at": utcnow(),
        }
        added = conn.execute(
            insert_or_ignore(conn, alerts, ["budget_id", "period_start", "threshold"])
            .values(**values)
            .returning(alerts.c.id)
        ).first()
        if added is not None:
            fired.append(AlertInfo(**values))
    return fired


def list_alerts(
    conn: Connection, principal: Principal, unacknowledged_only: bool = False, limit: int = 100
) -> list[AlertInfo]:
    """The organization's alerts, newest first; creators and viewers do not see other members'."""
    query = (
        select(alerts)
        .join(budgets, budgets.c.id == alerts.c.budget_id)
        .where(alerts.c.org_id == principal.org_id)
        .order_by(alerts.c.created_at.desc(), alerts.c.threshold.desc())
        .limit(limit)
    )
    if unacknowledged_only:
        query = query.where(alerts.c.acknowledged_at.is_(None))
    if ROLE_RANK[principal.role] < ROLE_RANK[Role.MANAGER]:
        query = query.where(or_(budgets.c.scope != "member", budgets.c.user_id == principal.user_id))
    return [
        AlertInfo(
            r.id,
            r.org_id,
            r.budget_id,
            r.period_start,
            r.threshold,
            r.spent_micros,
            r.limit_micros,
            r.message,
            _utc(r.created_at),
            _utc(r.acknowledged_at),
        )
        for r in conn.execute(query)
    ]


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def acknowledge(conn: Connection, principal: Principal, alert_id: str) -> None:
    """Mark an alert as seen (owners and managers)."""
    principal.require(Role.MANAGER, "acknowledge budget alerts")
    done = conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id, alerts.c.org_id == principal.org_id)
        .values(acknowledged_at=utcnow(), acknowledged_by=principal.user_id)
    )
    if done.rowcount == 0:
        raise NotFound(f"No alert {alert_id}.")


def deliver_in_background(settings: Settings, fired: list[AlertInfo], org_name: str) -> None:
    """Send new alerts to the webhook and by e-mail, when configured, without waiting."""
    if fired and (settings.alert_webhook_url or settings.smtp_url):
        threading.Thread(target=deliver, args=(settings, fired, org_name), daemon=True).start()


def deliver(settings: Settings, fired: list[AlertInfo], org_name: str) -> None:
    """Send alerts to the webhook and by e-mail; failures are logged, never raised."""
    for alert in fired:
        if settings.alert_webhook_url:
            _post(settings.alert_webhook_url, alert, org_name)
        if settings.smtp_url and settings.alert_email_to:
            _mail(settings, alert, org_name)


def _post(url: str, alert: AlertInfo, org_name: str) -> None:
    payload = {"type": "budget_alert", "organization": org_name, **asdict(alert)}
    payload.update(period_start=alert.period_start.isoformat(), created_at=alert.created_at.isoformat())
    payload.pop("acknowledged_at", None)
    try:
        httpx.post(url, json=payload, timeout=10.0).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("Budget alert webhook failed: %s", type(exc).__name__)


def _mail(settings: Settings, alert: AlertInfo, org_name: str) -> None:
    assert settings.smtp_url is not None
    url = urlsplit(settings.smtp_url.get_secret_value())
    message = EmailMessage()
    message["Subject"] = f"[{org_name}] budget at {alert.threshold}%"
    message["From"] = settings.alert_email_from
    message["To"] = settings.alert_email_to
    message.set_content(f"{alert.message}\n\nOrganization: {org_name}\n")
    client = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
    port = url.port or (465 if url.scheme == "smtps" else 25)
    try:
        with client(url.hostname or "localhost", port, timeout=10) as smtp:
            smtp.ehlo_or_helo_if_needed()
            if url.scheme == "smtp" and smtp.has_extn("starttls"):
                smtp.starttls()
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("Budget alert e-mail failed: %s", type(exc).__name__)
