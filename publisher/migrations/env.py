"""Alembic environment: runs against the engine handed over by :func:`publisher.db.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        # Several workers may start at once: serialise migrations on an advisory lock.
        connection.execute(text("SELECT pg_advisory_lock(74657)"))
        connection.commit()
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_unlock(74657)"))
        connection.commit()
