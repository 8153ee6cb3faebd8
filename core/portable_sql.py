"""SQL that both databases run alike: INSERT … ON CONFLICT, through each dialect's own construct."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_or_ignore(conn: Connection, table: Table, index_elements: list[str] | None = None) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` for this connection's database (add `.values(...)`)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=index_elements)


def upsert(
    conn: Connection, table: Table, index_elements: list[str], values: dict[str, Any], update: list[str]
):
    """`INSERT … ON CONFLICT (index_elements) DO UPDATE SET` the `update` columns to the new values."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    return statement.on_conflict_do_update(
        index_elements=index_elements, set_={name: statement.excluded[name] for name in update}
    )
