"""Alembic environment: runs against the engine handed over by :func:`publisher.db.upgrade`.

Several workers may start at once and all run the migrations: PostgreSQL serialises them on an
advisory lock; SQLite (one machine by nature) on an exclusive lock file beside the database, so
the second process waits and then finds the schema already at head.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import context
from sqlalchemy import text

engine = context.config.attributes["engine"]


@contextlib.contextmanager
def _sqlite_file_lock() -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(Path(database).with_name(Path(database).name + ".migrate.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


with _sqlite_file_lock(), engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_lock(74657)"))
        connection.commit()
    context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_unlock(74657)"))
    connection.commit()
