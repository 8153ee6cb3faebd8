"""The same migrations run on SQLite and PostgreSQL, and the models match them exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db.engine import make_engine
from db.migrate import current_revisions, head_revisions, upgrade
from db.schema import metadata


def test_migrations_go_from_empty_to_head(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revisions(engine) == set()
    upgrade(engine)
    assert current_revisions(engine) == head_revisions(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"organizations", "users", "memberships", "projects", "generations", "assets"} <= tables
    engine.dispose()


def test_models_match_the_migrations(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    engine.dispose()
    assert diff == []


def test_upgrading_twice_changes_nothing(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    upgrade(engine)
    assert current_revisions(engine) == head_revisions(engine)
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


def test_an_existing_database_keeps_its_models_through_later_migrations(database_url: str) -> None:
    from sqlalchemy import text

    engine = make_engine(database_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO models (name, provider, source, task, created_at) "
                "VALUES ('tiny-sd', 'diffusers', '/models/tiny', 'text-to-image', CURRENT_TIMESTAMP)"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, fallbacks FROM models")).one()
    engine.dispose()
    assert row.name == "tiny-sd"
    assert row.fallbacks in ([], "[]")
