"""Persistence: SQLAlchemy schema, engine, Alembic migrations and blob storage. Imports nothing of ours."""
