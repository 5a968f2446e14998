"""Move journalled clicks into the ``clicks`` table, in batches, exactly once.

Each batch's rows and the file's new offset are written in one transaction, and a click id
already stored is never stored or counted again: a crash between batches repeats nothing, and a
second ingest running at the same moment cannot count a click twice. A file whose writer has gone
is deleted once it has been read to the end. On SQLite the database parses the batch's JSON
(``sqlite_batch``); on PostgreSQL Python parses it and loads a staging table.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.exc import DBAPIError

from publisher.db import insert_on_conflict
from publisher.errors import StoryloopError
from publisher.tracking import journal
from publisher.tracking.schema import journal_offsets, links, salts

log = logging.getLogger(__name__)

# Journal bytes per transaction: each transaction writes every page it touched once to the WAL,
# so fewer, larger ones write less (with 4 MiB, 4.4x the data stored at 60,000 clicks; with this,
# about 2x, tests/tracking/test_ingest_scale.py). A chunk's parsed clicks take about 150 MB
# on PostgreSQL's path; on SQLite's, the batch is held as text and SQLite's parse of it.
CHUNK_BYTES = 32 * 1024 * 1024
SQLITE_CACHE_KIB = 64 * 1024  # the clicks indexes stay in memory while a batch is inserted
SQLITE_CHECKPOINT_PAGES = 65536  # 4 KiB pages: 256 MiB


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


def ingest(
    engine: Engine,
    directory: Path,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Ingest every journal file under ``directory``; safe to run while trackers write.

    ``on_progress(bytes_done, bytes_total)`` is called after each batch: the total is what the
    journals held beyond their saved offsets when ingest began (a tracker may add more)."""
    result = IngestResult()
    attribution: dict[str, Where] = {}
    with _exclusive(directory):
        paths = journal.files(directory)
        total = sum(max(0, journal.data_end(p) - _offset(engine, p.name)) for p in paths)
        done = 0

        def advance(size: int) -> None:
            nonlocal done
            done += size
            if on_progress is not None:
                on_progress(min(done, total), total)

        for path in paths:
            result.files += 1
            _ingest_file(engine, path, chunk_bytes, attribution, result, advance)
    forget_old_salts(engine)
    return result


def forget_old_salts(engine: Engine) -> None:
    """Drop reader salts older than yesterday: without its salt a hash cannot be recomputed from
    an address, so old reader hashes can no longer be tied to anyone."""
    cutoff = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    with engine.begin() as conn:
        conn.execute(delete(salts).where(salts.c.day < cutoff))


def _offset(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        query = select(journal_offsets.c.offset).where(journal_offsets.c.path == name)
        return int(conn.execute(query).scalar() or 0)


def _ingest_file(
    engine: Engine,
    path: Path,
    chunk_bytes: int,
    attribution: dict[str, Where],
    result: IngestResult,
    advance: Callable[[int], None] = lambda size: None,
) -> None:
    writer_gone = journal.writer_gone(path)  # checked first: later writes are then impossible
    offset = _offset(engine, path.name)
    sqlite_db = engine.dialect.name == "sqlite"
    stamp = _Stamper(sqlite_db)
    for lines, end in journal.read_lines(path, offset, chunk_bytes, live=not writer_gone):
        if sqlite_db:
            with engine.begin() as conn:
                sqlite_setup(conn)  # its pragmas cannot be set inside a transaction
                # the offset first: the write lock is taken before the batch reads anything,
                # so no other writer's commit can come between its reads and its writes
                _save_offset(conn, path.name, end)
                result.inserted += sqlite_batch(conn, path, lines, result)
            advance(end - offset)
            offset = end
            continue
        records = _parse(path, lines, result)
        missing = {r["code"] for r in records if isinstance(r, dict) and "code" in r}
        missing = {c for c in missing if isinstance(c, str)} - attribution.keys()
        if missing:
            attribution.update(_attribution(engine, missing))
        rows = _rows(path, records, attribution, stamp, result)
        with engine.begin() as conn:
            result.inserted += _insert(conn, rows)
            _save_offset(conn, path.name, end)
        advance(end - offset)
        offset = end
    if writer_gone and offset >= journal.data_end(path):
        path.unlink()
        with engine.begin() as conn:
            conn.execute(delete(journal_offsets).where(journal_offsets.c.path == path.name))


Where = tuple[str, str, str, str | None, str | None]  # delivery_id, story, channel, variant, region
STAGE_COLUMNS = (
    "id",
    "code",
    "delivery_id",
    "story",
    "channel",
    "variant",
    "region",
    "at",
    "day",
    "kind",
    "agent",
    "reader",
    "reader_key",
    "referrer_host",
)
CLICK_COLUMNS = ", ".join(c for c in STAGE_COLUMNS if c not in ("day", "reader_key"))
GROUP = "story, channel, variant, region"
KINDS = frozenset(("reader", "bot", "head"))


def _parse(path: Path, lines: list[bytes], result: IngestResult) -> list[Any]:
    """Parse a chunk in one ``json.loads`` call; line by line only when the chunk is damaged."""
    present = [line for line in lines if line.strip()]
    result.read += len(present)
    try:
        decoded: list[Any] = json.loads(b"[" + b",".join(present) + b"]")
    except ValueError:
        decoded = [_loads(path, line) for line in present]
    return decoded


def _loads(path: Path, line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        log.warning("%s: skipping a line that is not JSON: %r", path.name, line[:200])
        return None


def _rows(
    path: Path,
    records: list[Any],
    attribution: dict[str, Where],
    stamp: _Stamper,
    result: IngestResult,
) -> list[tuple[Any, ...]]:
    rows: dict[str, tuple[Any, ...]] = {}  # one row per click id
    for item in records:
        try:
            click_id, code, kind = item["id"], item["code"], item["kind"]
            when, day = stamp(float(item["at"]))
            reader = item.get("reader")
            key = reader_key(reader) if kind == "reader" else None
            row = (click_id, code, *attribution[code], when, day, kind, item.get("agent"))
            rows[click_id] = (*row, reader, key, item.get("ref"))
        except KeyError as exc:
            if isinstance(item, dict) and exc.args and exc.args[0] == item.get("code"):
                log.warning("%s: click %s has unknown code %s", path.name, item["id"], exc)
            elif item is not None:
                log.warning("%s: skipping a malformed journal line: %.200r", path.name, item)
            result.skipped += 1
        except (TypeError, ValueError, AttributeError, OverflowError, OSError):
            if item is not None:
                log.warning("%s: skipping a malformed journal line: %.200r", path.name, item)
            result.skipped += 1
    valid = [row for row in rows.values() if _valid(row)]
    if len(valid) < len(rows):
        log.warning(
            "%s: skipping %d line(s) with a bad id or kind", path.name, len(rows) - len(valid)
        )
        result.skipped += len(rows) - len(valid)
    return valid


def _valid(row: tuple[Any, ...]) -> bool:
    return isinstance(row[0], str) and len(row[0]) <= 64 and row[9] in KINDS


def reader_key(reader: Any) -> int | None:
    """The reader hash as a 60-bit integer: half the size of the hex, twice as fast to count."""
    if not isinstance(reader, str) or len(reader) < 15:
        return None
    try:
        return int(reader[:15], 16)
    except ValueError:
        return None


class _Stamper:
    """Click times as the database column stores them; SQLite's text form cached per second."""

    def __init__(self, as_text: bool) -> None:
        self.as_text = as_text
        self.second = -1
        self.prefix = ""

    def __call__(self, at: float) -> tuple[Any, str]:
        """(the value for the ``at`` column, the UTC day)."""
        second = int(at)
        if second != self.second:
            moment = datetime.fromtimestamp(second, UTC)
            self.second, self.prefix = second, moment.strftime("%Y-%m-%d %H:%M:%S")
        if not self.as_text:
            return datetime.fromtimestamp(at, UTC), self.prefix[:10]
        micro = min(int((at - second) * 1_000_000), 999_999)
        return f"{self.prefix}.{micro:06d}", self.prefix[:10]


def _attribution(engine: Engine, wanted: set[str]) -> dict[str, Where]:
    cols = (links.c.code, links.c.delivery_id, links.c.story)
    cols_more = (links.c.channel, links.c.variant, links.c.region)
    found: dict[str, Where] = {}
    with engine.connect() as conn:
        for code, *where in conn.execute(
            select(*cols, *cols_more).where(links.c.code.in_(sorted(wanted)))
        ):
            found[code] = tuple(where)  # type: ignore[assignment]
    return found


def _stage_ddl(dialect: str) -> str:
    at = "TEXT" if dialect == "sqlite" else "TIMESTAMP WITH TIME ZONE"
    return (
        "CREATE TEMPORARY TABLE IF NOT EXISTS click_stage (id VARCHAR(64), code VARCHAR(32), "
        "delivery_id VARCHAR(200), story VARCHAR(200), channel VARCHAR(100), variant VARCHAR(50), "
        f"region VARCHAR(100), at {at}, day VARCHAR(10), kind VARCHAR(10), agent VARCHAR(50), "
        "reader VARCHAR(32), reader_key BIGINT, referrer_host VARCHAR(255))"
    )


def _reader_stage_ddl() -> str:
    return (
        "CREATE TEMPORARY TABLE IF NOT EXISTS reader_stage (story VARCHAR(200), "
        "channel VARCHAR(100), variant VARCHAR(50), region VARCHAR(100), reader_key BIGINT, "
        "day VARCHAR(10))"
    )


FINE_KEY = "story, channel, COALESCE(variant, ''), COALESCE(region, '')"
READER_KEY = "story, channel, variant, region, reader_key"

# Run in order inside the batch's transaction. Clicks already in the table are dropped from the
# stage first, and readers already counted from the reader stage, so the totals and the rollup
# only ever grow by clicks and readers stored for the first time.
_APPLY = (
    "DELETE FROM click_stage WHERE EXISTS (SELECT 1 FROM clicks WHERE clicks.id = click_stage.id)",
    f"INSERT INTO clicks ({CLICK_COLUMNS}) SELECT {CLICK_COLUMNS} FROM click_stage",
    "INSERT INTO click_totals (delivery_id, day, story, channel, variant, region, reader_clicks, "
    "bot_fetches) SELECT delivery_id, day, story, channel, variant, region, "
    "SUM(CASE WHEN kind = 'reader' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN kind = 'reader' THEN 0 ELSE 1 END) FROM click_stage WHERE true "
    f"GROUP BY delivery_id, day, {GROUP} ON CONFLICT (delivery_id, day) DO UPDATE SET "
    "reader_clicks = click_totals.reader_clicks + excluded.reader_clicks, "
    "bot_fetches = click_totals.bot_fetches + excluded.bot_fetches",
    "INSERT INTO post_days (day, story, channel, variant, region, reader_clicks, bot_fetches, "
    f"readers) SELECT day, {FINE_KEY}, SUM(CASE WHEN kind = 'reader' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN kind = 'reader' THEN 0 ELSE 1 END), 0 FROM click_stage WHERE true "
    f"GROUP BY day, {FINE_KEY} ON CONFLICT (day, story, channel, variant, region) DO UPDATE SET "
    "reader_clicks = post_days.reader_clicks + excluded.reader_clicks, "
    "bot_fetches = post_days.bot_fetches + excluded.bot_fetches",
    "DELETE FROM reader_stage",
    f"INSERT INTO reader_stage ({READER_KEY}, day) SELECT {FINE_KEY}, reader_key, MIN(day) "
    f"FROM click_stage WHERE reader_key IS NOT NULL GROUP BY {FINE_KEY}, reader_key",
    "DELETE FROM reader_stage WHERE EXISTS (SELECT 1 FROM click_readers r WHERE "
    "r.story = reader_stage.story AND r.channel = reader_stage.channel AND "
    "r.variant = reader_stage.variant AND r.region = reader_stage.region AND "
    "r.reader_key = reader_stage.reader_key)",
    f"INSERT INTO click_readers ({READER_KEY}, day) SELECT {READER_KEY}, day FROM reader_stage",
    "INSERT INTO post_days (day, story, channel, variant, region, reader_clicks, bot_fetches, "
    "readers) SELECT day, story, channel, variant, region, 0, 0, COUNT(*) FROM reader_stage "
    "WHERE true GROUP BY day, story, channel, variant, region "
    "ON CONFLICT (day, story, channel, variant, region) DO UPDATE SET "
    "readers = post_days.readers + excluded.readers",
    "DELETE FROM reader_stage",
    "INSERT INTO daily_readers (reader_key, day) SELECT reader_key, MIN(day) FROM click_stage "
    "WHERE reader_key IS NOT NULL GROUP BY reader_key ON CONFLICT DO NOTHING",
    # a conversion recorded before its click was ingested (the triggers on conversions found
    # no click then): its reader now
    "INSERT INTO conversion_readers (conversion_id, story, channel, variant, region, reader, "
    "day, at) SELECT c.id, c.story, c.channel, c.variant, c.region, substr(s.reader, 1, 15), "
    "s.day, c.at FROM click_stage s JOIN conversions c ON c.click_id = s.id "
    "WHERE s.kind = 'reader' AND s.reader IS NOT NULL ON CONFLICT DO NOTHING",
)


def _insert(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Store a batch of clicks and update the report's totals; returns how many were new."""
    if not rows:
        return 0
    sqlite_db = conn.dialect.name == "sqlite"
    if sqlite_db:
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        # A page rewritten by several batches is copied from the WAL into the file once per
        # checkpoint: checkpoint at 256 MiB of WAL rather than SQLite's default 4 MiB.
        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
        conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
    conn.exec_driver_sql(_stage_ddl(conn.dialect.name))
    conn.exec_driver_sql(_reader_stage_ddl())
    conn.exec_driver_sql("DELETE FROM click_stage")
    mark = "?" if sqlite_db else "%s"
    marks = ", ".join(mark for _ in STAGE_COLUMNS)
    sql = f"INSERT INTO click_stage ({', '.join(STAGE_COLUMNS)}) VALUES ({marks})"
    conn.exec_driver_sql(sql, rows)
    for statement in _APPLY[:1]:
        conn.exec_driver_sql(statement)
    fresh = int(conn.exec_driver_sql("SELECT COUNT(*) FROM click_stage").scalar_one())
    for statement in _APPLY[1:]:
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql("DELETE FROM click_stage")
    return fresh


def _save_offset(conn: Connection, name: str, offset: int) -> None:
    row = {"path": name, "offset": offset}
    statement = insert_on_conflict(
        conn, journal_offsets, values=row, keys=["path"], update={"offset": offset}
    )
    conn.execute(statement)


# SQLite parses the journal itself: a batch's lines are bound as one JSON array and read with
# json_each, so no Python code runs per click. Each element's fields are extracted once (the
# LIMITs keep SQLite from copying the extractions into every place that uses them), checked as
# the Python path checks them, and attributed to their link; rows that fail are kept with the
# problem, logged and dropped before anything is stored.
_SQLITE_FIELDS = ("id", "code", "at", "kind", "agent", "reader", "ref")
_SQLITE_PARSED = (
    "SELECT key AS n, "
    + ", ".join(f"json_extract(v, '$.{f}') AS {f}" for f in _SQLITE_FIELDS)
    + " FROM (SELECT key, CASE WHEN type = 'object' THEN value END AS v FROM json_each(?) "
    "LIMIT -1 OFFSET 0) LIMIT -1 OFFSET 0"
)
# the ``at`` column's text, as _Stamper writes it
_SQLITE_AT = (
    "CASE WHEN typeof(at) IN ('integer', 'real') THEN datetime(CAST(at AS INTEGER), 'unixepoch') "
    "|| printf('.%06d', min(CAST((at - CAST(at AS INTEGER)) * 1000000 AS INTEGER), 999999)) END"
)
_SQLITE_BATCH_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS click_batch (n INTEGER, id TEXT, code TEXT, "
    "delivery_id TEXT, story TEXT, channel TEXT, variant TEXT, region TEXT, at TEXT, kind TEXT, "
    "agent TEXT, reader TEXT, referrer_host TEXT, problem TEXT)"
)
_SQLITE_STAGE = (
    "INSERT INTO click_batch (n, id, code, delivery_id, story, channel, variant, region, at, "
    "kind, agent, reader, referrer_host, problem) SELECT r.n, r.id, r.code, l.delivery_id, "
    "l.story, l.channel, l.variant, l.region, r.t, r.kind, r.agent, r.reader, r.ref, "
    "CASE WHEN r.t IS NULL OR typeof(r.id) <> 'text' OR length(r.id) > 64 "
    "OR typeof(r.code) <> 'text' OR typeof(r.kind) <> 'text' "
    "OR r.kind NOT IN ('reader', 'bot', 'head') THEN 'malformed' "
    "WHEN l.code IS NULL THEN 'unknown' END "
    f"FROM (SELECT n, id, code, kind, agent, reader, ref, {_SQLITE_AT} AS t "
    f"FROM ({_SQLITE_PARSED}) LIMIT -1 OFFSET 0) AS r "
    "LEFT JOIN tracked_links AS l ON l.code = r.code"
)
_SQLITE_SUMS_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS click_sums (delivery_id TEXT, day TEXT, story TEXT, "
    "channel TEXT, variant TEXT, region TEXT, reader_clicks INTEGER, bot_fetches INTEGER)"
)
# Run in order after the batch's new clicks were appended to ``clicks`` (rowid > ?): every
# figure is counted from the rows stored for the first time, exactly as the staged path counts.
_SQLITE_APPLY = (
    "DELETE FROM click_sums",
    # counted per link and day (short sort keys), then attributed: a link belongs to one post
    "INSERT INTO click_sums (delivery_id, day, story, channel, variant, region, reader_clicks, "
    "bot_fetches) SELECT l.delivery_id, s.day, l.story, l.channel, l.variant, l.region, "
    "s.reader_clicks, s.bot_fetches FROM (SELECT code, substr(at, 1, 10) AS day, "
    "SUM(kind = 'reader') AS reader_clicks, SUM(kind <> 'reader') AS bot_fetches FROM clicks "
    "WHERE rowid > ? GROUP BY code, substr(at, 1, 10)) AS s "
    "JOIN tracked_links AS l ON l.code = s.code",
    "INSERT INTO click_totals (delivery_id, day, story, channel, variant, region, reader_clicks, "
    "bot_fetches) SELECT delivery_id, day, story, channel, variant, region, SUM(reader_clicks), "
    "SUM(bot_fetches) FROM click_sums WHERE true GROUP BY delivery_id, day, story, channel, "
    "variant, region ON CONFLICT (delivery_id, day) DO UPDATE SET "
    "reader_clicks = click_totals.reader_clicks + excluded.reader_clicks, "
    "bot_fetches = click_totals.bot_fetches + excluded.bot_fetches",
    "INSERT INTO post_days (day, story, channel, variant, region, reader_clicks, bot_fetches, "
    f"readers) SELECT day, {FINE_KEY}, SUM(reader_clicks), SUM(bot_fetches), 0 FROM click_sums "
    f"WHERE true GROUP BY day, {FINE_KEY} ON CONFLICT (day, story, channel, variant, region) "
    "DO UPDATE SET reader_clicks = post_days.reader_clicks + excluded.reader_clicks, "
    "bot_fetches = post_days.bot_fetches + excluded.bot_fetches",
    "DELETE FROM reader_stage",
    # the key worked out once a click (the LIMIT keeps SQLite from repeating the call where
    # the key is grouped, tested and returned)
    f"INSERT INTO reader_stage ({READER_KEY}, day) SELECT story, channel, variant, region, "
    "reader_key, MIN(day) FROM (SELECT story, channel, COALESCE(variant, '') AS variant, "
    "COALESCE(region, '') AS region, storyloop_reader_key(reader) AS reader_key, "
    "substr(at, 1, 10) AS day FROM clicks WHERE rowid > ? AND kind = 'reader' LIMIT -1 OFFSET 0) "
    f"WHERE reader_key IS NOT NULL GROUP BY {READER_KEY}",
    "INSERT INTO daily_readers (reader_key, day) SELECT reader_key, MIN(day) FROM reader_stage "
    "GROUP BY reader_key ON CONFLICT DO NOTHING",
    *_APPLY[6:9],  # readers not counted before: click_readers and post_days.readers
    "INSERT INTO conversion_readers (conversion_id, story, channel, variant, region, reader, "
    "day, at) SELECT c.id, c.story, c.channel, c.variant, c.region, substr(k.reader, 1, 15), "
    "substr(k.at, 1, 10), c.at FROM clicks k JOIN conversions c ON c.click_id = k.id "
    "WHERE k.rowid > ? AND k.kind = 'reader' AND k.reader IS NOT NULL ON CONFLICT DO NOTHING",
)


class _BadJSON(StoryloopError):
    """The batch is not one JSON array: some line is not JSON (caught inside this module)."""


def sqlite_batch(conn: Connection, path: Path, lines: list[bytes], result: IngestResult) -> int:
    """Store a batch of journal lines on SQLite and update the totals; returns how many clicks
    were new. The caller runs ``sqlite_setup`` first, and its transaction saves the offset."""
    present = [line for line in lines if line.strip()]
    result.read += len(present)
    if not present:
        return 0
    conn.exec_driver_sql("DELETE FROM click_batch")
    try:
        array = _sqlite_stage(conn, present)
    except _BadJSON:  # a damaged batch: its lines one by one
        present = _json_lines(conn, path, present, result)
        if not present:
            return 0
        array = _sqlite_stage(conn, present)
    _sqlite_problems(conn, path, array, result)
    before = int(conn.exec_driver_sql("SELECT COALESCE(MAX(rowid), 0) FROM clicks").scalar_one())
    # The first copy of a click id is kept; ids stored before (a journal read again) are skipped.
    # New rows get rowids above every row stored before: that is how the statements find them.
    stored = conn.exec_driver_sql(
        f"INSERT OR IGNORE INTO clicks ({CLICK_COLUMNS}) SELECT {CLICK_COLUMNS} FROM click_batch"
    )
    fresh = max(0, stored.rowcount)
    conn.exec_driver_sql("DELETE FROM click_batch")
    if fresh:
        for statement in _SQLITE_APPLY:
            conn.exec_driver_sql(statement, (before,) if "?" in statement else ())
        conn.exec_driver_sql("DELETE FROM reader_stage")
    return fresh


def sqlite_setup(conn: Connection) -> None:
    """The connection's settings, the reader-key function and the staging tables for
    ``sqlite_batch``; run before the batch's transaction begins."""
    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    # A page rewritten by several batches is copied from the WAL into the file once per
    # checkpoint: checkpoint at 256 MiB of WAL rather than SQLite's default 4 MiB.
    conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.create_function("storyloop_reader_key", 1, reader_key, deterministic=True)
    conn.exec_driver_sql(_SQLITE_BATCH_DDL)
    conn.exec_driver_sql(_SQLITE_SUMS_DDL)
    conn.exec_driver_sql(_reader_stage_ddl())


def _sqlite_stage(conn: Connection, lines: list[bytes]) -> str:
    """Stage the lines as rows of ``click_batch``; returns the JSON array they were bound as."""
    try:
        array = (b"[" + b",".join(lines) + b"]").decode()
    except UnicodeDecodeError as exc:
        raise _BadJSON("the batch is not one JSON array") from exc
    try:
        conn.exec_driver_sql(_SQLITE_STAGE, (array,))
    except DBAPIError as exc:
        if "malformed JSON" not in str(exc.orig):
            raise
        raise _BadJSON("the batch is not one JSON array") from exc
    return array


def _json_lines(
    conn: Connection, path: Path, present: list[bytes], result: IngestResult
) -> list[bytes]:
    """The lines both Python's JSON parser and SQLite's accept; the others logged and skipped."""
    parsed = []
    for line in present:
        try:
            json.loads(line)
            line.decode()
        except ValueError:  # UnicodeDecodeError too
            log.warning("%s: skipping a line that is not JSON: %r", path.name, line[:200])
            continue
        parsed.append(line)
    # SQLite's parser is stricter than Python's in places (NaN, for one): ask it line by line
    query = "SELECT key FROM json_each(?) WHERE NOT json_valid(value)"
    texts = json.dumps([line.decode() for line in parsed])
    rejected = {int(n) for (n,) in conn.exec_driver_sql(query, (texts,))}
    for n in sorted(rejected):
        log.warning("%s: skipping a line that is not JSON: %r", path.name, parsed[n][:200])
    good = [line for n, line in enumerate(parsed) if n not in rejected]
    result.skipped += len(present) - len(good)
    return good


def _sqlite_problems(conn: Connection, path: Path, array: str, result: IngestResult) -> None:
    """Log, count and drop the staged rows that cannot be stored."""
    query = "SELECT n, problem, id, code FROM click_batch WHERE problem IS NOT NULL ORDER BY n"
    problems = conn.exec_driver_sql(query).all()
    if not problems:
        return
    result.skipped += len(problems)
    malformed = [n for n, problem, *_ in problems if problem == "malformed"]
    texts: dict[int, str] = {}
    if malformed:
        marks = ", ".join("?" for _ in malformed[:1000])
        sql = f"SELECT key, value FROM json_each(?) WHERE key IN ({marks})"
        texts = dict(conn.exec_driver_sql(sql, (array, *malformed[:1000])).all())
    for n, problem, click_id, code in problems:
        if problem == "unknown":
            log.warning("%s: click %s has unknown code %s", path.name, click_id, code)
        else:
            text = str(texts.get(n, "(not shown)"))
            log.warning("%s: skipping a malformed journal line: %.200s", path.name, text)
    conn.exec_driver_sql("DELETE FROM click_batch WHERE problem IS NOT NULL")
