"""Storage: one SQLAlchemy 2 Core metadata, a SQLite file by default or PostgreSQL by URL.

Tables are declared next to the code that owns them (``publisher.ledger``, ``publisher.tracking``)
on :data:`metadata`; their shape in the database comes only from the Alembic migrations in
``publisher/migrations``, which run at start-up and with ``storyloop db upgrade``.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_SECONDS = 30.0  # how long a SQLite writer waits for another one before "database is locked"


def busy_seconds() -> float:
    """``STORYLOOP_DB_BUSY_SECONDS``, else :data:`BUSY_SECONDS`."""
    try:
        return max(0.0, float(os.environ.get("STORYLOOP_DB_BUSY_SECONDS", BUSY_SECONDS)))
    except ValueError:
        return BUSY_SECONDS


def _sqlite_pragmas(busy_ms: int, dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={busy_ms:d}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def connect(url: str, **kw: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, and its folder created."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kw)
        event.listen(engine, "connect", partial(_sqlite_pragmas, int(busy_seconds() * 1000)))
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, **kw)


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``. Safe to call from several processes at once."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
        return rev
