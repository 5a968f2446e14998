"""Storage: one SQLAlchemy 2 Core metadata, a SQLite file by default or PostgreSQL by URL.

Tables are declared next to the code that owns them (``publisher.ledger``, ``publisher.tracking``)
on :data:`metadata`; their shape in the database comes only from the Alembic migrations in
``publisher/migrations``, which run at start-up and with ``storyloop db upgrade``.

Two things every table shares live here: :class:`UTCDateTime`, the one time type (aware UTC in
and out, on both databases), and :func:`insert_on_conflict`, the one place that writes the
dialect-specific ``INSERT … ON CONFLICT`` (SQLite and PostgreSQL spell it alike, but SQLAlchemy
builds it from each dialect's own ``insert``).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

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


# --------------------------------------------------------------------------- time


def sqlite_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLite stores it: naive UTC text, as SQLAlchemy writes it."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the database stores aware UTC datetimes")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without its "+00:00"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (naive UTC text) as on PostgreSQL (timestamptz).

    The one time type of every table: a naive datetime is refused when written, and every value
    read back is aware UTC, whichever database it came from."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the database stores aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite the text is written and read by datetime's own C methods, in the same format
    # SQLAlchemy's SQLite DATETIME uses ("2026-11-23 09:00:00.000000"), so stored values compare
    # as before; its generic path (a %-format of seven fields, a regex to read back) was most of
    # the CPU of writing a large plan.
    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        return sqlite_text

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: str | None) -> datetime | None:
            if value is None:
                return None
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

        return from_text


# --------------------------------------------------------------------------- upsert


def insert_on_conflict(
    conn: Connection,
    table: Table,
    *,
    keys: Sequence[str] | None = None,
    update: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    where: Any = None,
) -> Insert:
    """``INSERT … ON CONFLICT`` for this connection's database: rows whose ``keys`` (any unique
    constraint when None) already exist are left alone, or, with ``update``, get those values
    (only where the existing row meets ``where``, when given).
    ``values`` are the row's, else the rows are passed to ``conn.execute`` with the statement."""
    statement: sqlite.Insert | postgresql.Insert = (
        sqlite.insert(table) if conn.dialect.name == "sqlite" else postgresql.insert(table)
    )
    if values is not None:
        statement = statement.values(**values)
    elements = list(keys) if keys is not None else None
    if update is not None:
        return statement.on_conflict_do_update(
            index_elements=elements, set_=dict(update), where=where
        )
    return statement.on_conflict_do_nothing(index_elements=elements)


def _sqlite_rows(
    rows: list[dict[str, Any]], names: list[str], dated: list[bool]
) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them, their datetimes as SQLite's text. Rows of one batch
    mostly share their times (created and updated now), so each distinct time is written once."""
    get = operator.itemgetter(*names)
    at = [i for i, d in enumerate(dated) if d]
    if len(names) == 1:
        return [(sqlite_text(r[names[0]]) if at else r[names[0]],) for r in rows]
    if not at:
        return [get(r) for r in rows]
    texts: dict[datetime | None, str | None] = {}
    out = []
    for r in rows:
        row = list(get(r))
        for i in at:
            value = row[i]
            text = texts.get(value, _MISSING)
            if text is _MISSING:
                text = texts[value] = sqlite_text(value)
            row[i] = text
        out.append(tuple(row))
    return out


_MISSING: Any = object()


def prepare_insert_ignore(
    dialect: str,
    table: Table,
    keys: list[str],
    rows: list[dict[str, Any]],
    *,
    replace_if: Mapping[str, str] | None = None,
) -> Callable[[Connection], int]:
    """Many rows, all with the same keys, those whose key exists skipped, in two halves: the
    statement and, on SQLite, the rows as the driver takes them are made now, for a connection
    to ``dialect`` (``"sqlite"``, ``"postgresql"``); the function returned runs them on one and
    returns the number written. A caller holding a write lock only for the second half holds it
    for the database's work alone.

    With ``replace_if`` (column: value), an existing row that has those values is replaced
    instead, in the same statement: it takes the new row's values, and its columns the new row
    does not name go back to NULL, as if it had been deleted and inserted again.

    On SQLite the rows go to the driver as tuples, their datetimes as text: SQLAlchemy's per-row
    parameter processing was a third of the CPU of writing a large plan."""
    if not rows:
        return _none_written
    names = list(rows[0])
    replace = _replacing(table, keys, names, replace_if)
    if dialect == "sqlite" and all(
        isinstance(table.c[n].type, (String, Integer, Float, UTCDateTime)) for n in names
    ):
        dated = [isinstance(table.c[n].type, UTCDateTime) for n in names]
        sql = (
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' for _ in names)}) "
            f"ON CONFLICT ({', '.join(keys)}) "
        )
        if replace is None:
            sql += "DO NOTHING"
        else:
            sets = ", ".join(
                f"{c} = excluded.{c}" if c in names else f"{c} = NULL" for c in replace
            )
            when = " AND ".join(
                f"{table.name}.{c} = {_sql_text(v)}" for c, v in (replace_if or {}).items()
            )
            sql += f"DO UPDATE SET {sets} WHERE {when}"
        params = _sqlite_rows(rows, names, dated)
        return partial(_run_driver_sql, sql, params)
    return partial(_insert_ignore_statement, table, keys, rows, replace, replace_if)


def _none_written(conn: Connection) -> int:
    return 0


def _run_driver_sql(sql: str, params: list[tuple[Any, ...]], conn: Connection) -> int:
    return int(conn.exec_driver_sql(sql, params).rowcount or 0)


def _insert_ignore_statement(
    table: Table,
    keys: list[str],
    rows: list[dict[str, Any]],
    replace: list[str] | None,
    replace_if: Mapping[str, str] | None,
    conn: Connection,
) -> int:
    names = list(rows[0])
    if replace is None:
        statement = insert_on_conflict(conn, table, keys=keys)
    else:
        excluded = (
            sqlite.insert(table) if conn.dialect.name == "sqlite" else postgresql.insert(table)
        ).excluded
        statement = insert_on_conflict(
            conn,
            table,
            keys=keys,
            update={c: excluded[c] if c in names else None for c in replace},
            where=and_(*(table.c[c] == v for c, v in (replace_if or {}).items())),
        )
    return int(conn.execute(statement, rows).rowcount or 0)


def _replacing(
    table: Table, keys: list[str], names: list[str], replace_if: Mapping[str, str] | None
) -> list[str] | None:
    """The columns a replaced row has set (every one but the keys), or None to skip it."""
    if not replace_if:
        return None
    unknown = sorted((set(names) | set(replace_if)) - set(table.c.keys()))
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(unknown)}")
    return [c.name for c in table.c if c.name not in keys]


def _sql_text(value: str) -> str:
    """A string as a SQL literal (for the constants of a statement, never for user input)."""
    return "'" + value.replace("'", "''") + "'"
