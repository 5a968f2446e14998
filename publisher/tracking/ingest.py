"""Move journalled clicks into the ``clicks`` table, in batches, exactly once.

Each batch's rows and the file's new offset are written in one transaction, and rows are inserted
with ``ON CONFLICT DO NOTHING`` on the click id: a crash between batches repeats nothing, and a
second ingest running at the same moment cannot count a click twice. A file whose writer has gone
is deleted once it has been read to the end.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.tracking import journal
from publisher.tracking.schema import clicks, journal_offsets, links

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024


@dataclass
class IngestResult:
    files: int = 0
    read: int = 0
    inserted: int = 0
    skipped: int = 0


@contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".ingest.lock", "w") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def ingest(engine: Engine, directory: Path, *, chunk_bytes: int = CHUNK_BYTES) -> IngestResult:
    """Ingest every journal file under ``directory``; safe to run while trackers write."""
    result = IngestResult()
    attribution: dict[str, dict[str, Any]] = {}
    with _exclusive(directory):
        for path in journal.files(directory):
            result.files += 1
            _ingest_file(engine, path, chunk_bytes, attribution, result)
    return result


def _offset(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        query = select(journal_offsets.c.offset).where(journal_offsets.c.path == name)
        return int(conn.execute(query).scalar() or 0)


def _ingest_file(
    engine: Engine,
    path: Path,
    chunk_bytes: int,
    attribution: dict[str, dict[str, Any]],
    result: IngestResult,
) -> None:
    writer_gone = journal.writer_gone(path)  # checked first: later writes are then impossible
    offset = _offset(engine, path.name)
    for lines, end in journal.read_lines(path, offset, chunk_bytes):
        rows = _rows(path, lines, attribution, engine, result)
        with engine.begin() as conn:
            result.inserted += _insert(conn, rows)
            _save_offset(conn, path.name, end)
        offset = end
    if writer_gone and offset >= path.stat().st_size:
        path.unlink()
        with engine.begin() as conn:
            conn.execute(delete(journal_offsets).where(journal_offsets.c.path == path.name))


def _rows(
    path: Path,
    lines: list[bytes],
    attribution: dict[str, dict[str, Any]],
    engine: Engine,
    result: IngestResult,
) -> list[dict[str, Any]]:
    parsed: list[journal.Click] = []
    for line in lines:
        if not line.strip():
            continue
        result.read += 1
        try:
            parsed.append(journal.Click.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            log.warning("%s: skipping a malformed journal line: %r", path.name, line[:200])
            result.skipped += 1
    missing = {c.code for c in parsed} - attribution.keys()
    if missing:
        attribution.update(_attribution(engine, missing))
    rows = []
    for click in parsed:
        where = attribution.get(click.code)
        if where is None:
            log.warning("%s: click %s names unknown code %s", path.name, click.id, click.code)
            result.skipped += 1
            continue
        rows.append(_row(click, where))
    return rows


def _row(click: journal.Click, where: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": click.id,
        "code": click.code,
        **where,
        "at": datetime.fromtimestamp(click.at, UTC),
        "kind": click.kind,
        "agent": click.agent,
        "reader": click.reader,
        "referrer_host": click.referrer_host,
    }


def _attribution(engine: Engine, wanted: set[str]) -> dict[str, dict[str, Any]]:
    cols = (links.c.code, links.c.delivery_id, links.c.story)
    cols_more = (links.c.channel, links.c.variant, links.c.region)
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for code, delivery_id, story, channel, variant, region in conn.execute(
            select(*cols, *cols_more).where(links.c.code.in_(sorted(wanted)))
        ):
            found[code] = {
                "delivery_id": delivery_id,
                "story": story,
                "channel": channel,
                "variant": variant,
                "region": region,
            }
    return found


def _dialect(conn: Connection) -> Any:
    return sqlite if conn.dialect.name == "sqlite" else postgresql


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    statement = _dialect(conn).insert(clicks).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":  # sqlite3's executemany sums its row counts
        return max(conn.execute(statement, rows).rowcount, 0)
    return len(conn.execute(statement.returning(clicks.c.id), rows).all())


def _save_offset(conn: Connection, name: str, offset: int) -> None:
    statement = _dialect(conn).insert(journal_offsets).values(path=name, offset=offset)
    conn.execute(statement.on_conflict_do_update(index_elements=["path"], set_={"offset": offset}))
