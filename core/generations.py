"""The generation record: written when work starts, finished with its cost, or failed with its error."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from core.accounts import Principal
from core.errors import NotFound
from core.types import GenerationStatus, ModelRef, Usage
from db.schema import assets, attempts, generations, new_id, utcnow


@dataclass(frozen=True)
class AssetInfo:
    id: str
    kind: str
    mime: str
    size_bytes: int
    width: int | None
    height: int | None
    duration_s: float | None
    storage_key: str
    created_at: datetime


@dataclass(frozen=True)
class GenerationInfo:
    id: str
    project_id: str
    status: GenerationStatus
    provider: str
    model: str
    task: str
    prompt: str
    negative_prompt: str
    parameters: dict[str, Any]
    seed: int | None
    estimated_cost_micros: int | None
    actual_cost_micros: int | None
    unpriced: bool
    created_at: datetime
    duration_ms: int | None
    error: str | None
    assets: list[AssetInfo] = field(default_factory=list)
    hold_id: str | None = None  # the reservation made for it, when a budget or credits applied


def start_generation(
    conn: Connection,
    principal: Principal,
    project_id: str,
    model: ModelRef,
    prompt: str,
    negative_prompt: str,
    params: dict[str, Any],
    seed: int | None,
    estimate: int | None,
    unpriced: bool,
    requested_model: str | None = None,
    *,
    generation_id: str | None = None,
    hold_id: str | None = None,
) -> str:
    """Record a generation as running and return its id."""
    generation_id = generation_id or new_id()
    now = utcnow()
    conn.execute(
        insert(generations).values(
            id=generation_id,
            org_id=principal.org_id,
            project_id=project_id,
            user_id=principal.user_id,
            status=GenerationStatus.RUNNING,
            provider=model.provider,
            model=model.name,
            requested_model=requested_model or model.name,
            modality=str(model.task.modality),
            task=str(model.task),
            prompt=prompt,
            negative_prompt=negative_prompt,
            parameters=params,
            seed=seed,
            estimated_cost_micros=estimate,
            unpriced=unpriced,
            hold_id=hold_id,
            created_at=now,
            started_at=now,
        )
    )
    return generation_id


def finish_generation(
    conn: Connection,
    generation_id: str,
    *,
    seed: int | None,
    usage: Usage,
    cost: int | None,
    served_by: ModelRef | None = None,
    params: dict[str, Any] | None = None,
    unpriced: bool | None = None,
) -> None:
    """Mark a generation succeeded with its actual cost and usage, and the model that served it."""
    values: dict[str, Any] = {}
    if served_by is not None:
        values.update(provider=served_by.provider, model=served_by.name)
    if params is not None:
        values["parameters"] = params
    if unpriced is not None:
        values["unpriced"] = unpriced
    _finish(
        conn,
        generation_id,
        status=GenerationStatus.SUCCEEDED,
        seed=seed,
        usage=asdict(usage),
        actual_cost_micros=cost,
        **values,
    )


def record_attempt(conn: Connection, principal: Principal, generation_id: str, record: Any) -> None:
    """Store one router attempt (a core.router.AttemptRecord) of a generation."""
    conn.execute(
        insert(attempts).values(
            id=new_id(),
            org_id=principal.org_id,
            generation_id=generation_id,
            provider=record.provider,
            model=record.model,
            number=record.number,
            started_at=record.started_at,
            latency_ms=record.latency_ms,
            outcome=record.outcome,
            error_code=record.error_code,
            http_status=record.http_status,
        )
    )


def fail_generation(
    conn: Connection, generation_id: str, *, status: GenerationStatus, code: str, message: str
) -> None:
    """Mark a generation failed or canceled with the reason a person can read."""
    _finish(conn, generation_id, status=status, error_code=code, error=message[:2000])


def _finish(conn: Connection, generation_id: str, **values: Any) -> None:
    started = conn.execute(
        select(generations.c.started_at).where(generations.c.id == generation_id)
    ).scalar_one()
    now = utcnow()
    if started.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        now = now.replace(tzinfo=None)
    duration = int((now - started).total_seconds() * 1000)
    conn.execute(
        update(generations)
        .where(generations.c.id == generation_id)
        .values(finished_at=utcnow(), duration_ms=duration, **values)
    )


def recent_gpu_seconds_per_step(conn: Connection, model: str) -> float | None:
    """Average GPU-seconds per step of the model's last successful runs, for estimates."""
    rows = conn.execute(
        select(generations.c.usage, generations.c.parameters)
        .where(generations.c.model == model, generations.c.status == GenerationStatus.SUCCEEDED)
        .order_by(generations.c.created_at.desc())
        .limit(20)
    ).all()
    ratios = []
    for row in rows:
        steps = (row.parameters or {}).get("steps")
        seconds = (row.usage or {}).get("gpu_seconds")
        if steps and seconds is not None:
            ratios.append(float(seconds) / float(steps))
    return sum(ratios) / len(ratios) if ratios else None


def get_generation(conn: Connection, principal: Principal, generation_id: str) -> GenerationInfo:
    """One generation of the principal's organization, with its assets."""
    row = conn.execute(
        select(generations).where(generations.c.id == generation_id, generations.c.org_id == principal.org_id)
    ).first()
    if row is None:
        raise NotFound(f"No generation {generation_id}.")
    return _info(conn, row)


def list_generations(
    conn: Connection, principal: Principal, project_id: str | None, limit: int = 50
) -> list[GenerationInfo]:
    """The organization's (or one project's) latest generations, newest first."""
    query = select(generations).where(generations.c.org_id == principal.org_id)
    if project_id:
        query = query.where(generations.c.project_id == project_id)
    rows = conn.execute(query.order_by(generations.c.created_at.desc()).limit(limit)).all()
    return [_info(conn, r) for r in rows]


def count_generations(conn: Connection, principal: Principal) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(generations).where(generations.c.org_id == principal.org_id)
        ).scalar_one()
    )


def _info(conn: Connection, row: Any) -> GenerationInfo:
    asset_rows = conn.execute(
        select(assets)
        .where(assets.c.generation_id == row.id, assets.c.deleted_at.is_(None))
        .order_by(assets.c.created_at)
    ).all()
    return GenerationInfo(
        id=row.id,
        project_id=row.project_id,
        status=GenerationStatus(row.status),
        provider=row.provider,
        model=row.model,
        task=row.task,
        prompt=row.prompt,
        negative_prompt=row.negative_prompt,
        parameters=dict(row.parameters or {}),
        seed=row.seed,
        estimated_cost_micros=row.estimated_cost_micros,
        actual_cost_micros=row.actual_cost_micros,
        unpriced=bool(row.unpriced),
        created_at=row.created_at,
        duration_ms=row.duration_ms,
        error=row.error,
        assets=[asset_info(a) for a in asset_rows],
        hold_id=row.hold_id,
    )


def asset_info(row: Any) -> AssetInfo:
    return AssetInfo(
        row.id,
        row.kind,
        row.mime,
        row.size_bytes,
        row.width,
        row.height,
        row.duration_s,
        row.storage_key,
        row.created_at,
    )
