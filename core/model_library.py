"""The models an operator made available, by our name, and which provider serves each."""

from __future__ import annotations

import re

from sqlalchemy import Connection, delete, insert, select, update

from core.errors import Conflict, InvalidInput, NotFound
from core.types import ModelRef, Task
from db.schema import models

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_model_name(name: str) -> str:
    """A model name safe to show and to type: letters, digits, '.', '_' and '-'."""
    if not _NAME.match(name or ""):
        raise InvalidInput(
            f"'{name}' is not a usable model name: use letters, digits, '.', '_' or '-' "
            "(at most 100 characters)."
        )
    return name


def add_model(
    conn: Connection, ref: ModelRef, *, replace: bool = False, fallbacks: list[str] | None = None
) -> ModelRef:
    """Make a model available under `ref.name`."""
    check_model_name(ref.name)
    existing = conn.execute(select(models.c.source).where(models.c.name == ref.name)).first()
    if existing and not replace:
        raise Conflict(f"A model called '{ref.name}' exists already (from {existing.source}).")
    if existing:
        conn.execute(delete(models).where(models.c.name == ref.name))
    conn.execute(
        insert(models).values(
            name=ref.name,
            provider=ref.provider,
            source=ref.source,
            task=str(ref.task),
            fallbacks=_checked_fallbacks(conn, ref, fallbacks or []),
        )
    )
    return ref


def get_fallbacks(conn: Connection, name: str) -> list[str]:
    """The models to try, in order, when `name` fails with a retryable error."""
    return list(conn.execute(select(models.c.fallbacks).where(models.c.name == name)).scalar() or [])


def set_fallbacks(conn: Connection, name: str, fallbacks: list[str]) -> list[str]:
    """Replace the fallback chain of `name`; each must exist and do the same task."""
    ref = get_model(conn, name)
    checked = _checked_fallbacks(conn, ref, fallbacks)
    conn.execute(update(models).where(models.c.name == name).values(fallbacks=checked))
    return checked


def _checked_fallbacks(conn: Connection, ref: ModelRef, fallbacks: list[str]) -> list[str]:
    checked: list[str] = []
    for other in fallbacks:
        if other == ref.name or other in checked:
            raise InvalidInput(f"'{other}' is listed twice or is the model itself.")
        other_ref = get_model(conn, other)
        if other_ref.task != ref.task:
            raise InvalidInput(
                f"'{other}' does {other_ref.task}, not {ref.task}, so it cannot stand in for {ref.name}."
            )
        checked.append(other)
    return checked


def list_models(conn: Connection) -> list[ModelRef]:
    rows = conn.execute(select(models).order_by(models.c.name))
    return [ModelRef(r.name, r.provider, r.source, Task(r.task)) for r in rows]


def get_model(conn: Connection, name: str) -> ModelRef:
    row = conn.execute(select(models).where(models.c.name == name)).first()
    if row is None:
        raise NotFound(
            f"No model called '{name}'. See `creator models list`, or add one with "
            "`creator models add ID_OR_PATH`."
        )
    return ModelRef(row.name, row.provider, row.source, Task(row.task))
