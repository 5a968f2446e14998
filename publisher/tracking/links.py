"""Tracked links: every link a post may contain becomes ``<base>/go/<code>`` before it goes out.

:func:`prepare_links` runs inside the engine's publish transaction, possibly in several processes
at once for different deliveries: rows are inserted with ``ON CONFLICT DO NOTHING`` and read back,
so a second call for the same delivery returns the codes the first one stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from sqlalchemy import Column, Connection, Row, Table, Text, bindparam, func, select
from sqlalchemy.dialects import postgresql

from channels.base import Links
from channels.text import find_urls, plain
from publisher.adapters import OFFLINE_CHANNEL as OFFLINE_CHANNEL
from publisher.adapters import utm_medium
from publisher.db import UTCDateTime, insert_on_conflict
from publisher.model import Story
from publisher.settings import Settings
from publisher.tracking import codes
from publisher.tracking.schema import links as links_table
from publisher.tracking.schema import offer_codes

SKIPPED_PREFIXES = ("mailto:", "tel:", "sms:", "javascript:", "data:", "#")
_ATTEMPTS = 5


def offer_prefix(settings: Settings) -> str:
    return settings.engine.tracking.offer_prefix.upper()


def story_links(story: Story) -> dict[str, str]:
    """Every link a post may contain, as written -> absolute; the story's own URL first, then
    the body's links, then URLs written in the title, summary, headlines and channel texts
    (found by the channels' own link extractor, the one that rewrites them)."""
    texts = (story.title, story.summary, story.offer or "", *story.variants.values())
    texts += tuple(story.overrides.values())
    return dict(_links_in(story.url, story.html or "", texts))


class _Anchors(HTMLParser):
    """The ``href`` of every ``<a>``, in order: the standard library's parser, without building a
    tree (a post needs only its links, and this runs once per story the engine publishes)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


@lru_cache(maxsize=1024)
def _links_in(url: str, html: str, texts: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """Parsed once per story text: a story is published on many channels and variants."""
    found: dict[str, str] = {url: url}
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    for raw in parser.hrefs:
        href = raw.strip()
        if not href or href.lower().startswith(SKIPPED_PREFIXES):
            continue
        absolute = urljoin(url, href)
        if urlsplit(absolute).scheme in ("http", "https"):
            found.setdefault(href, absolute)
    for text in texts:
        shown = plain(text)
        for start, end in find_urls(shown):
            found.setdefault(shown[start:end], shown[start:end])
    return tuple(found.items())


def tagged_target(url: str, utm: Mapping[str, str]) -> str:
    """``url`` with the utm parameters added; the editor's own values win."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in query}
    query += [(k, v) for k, v in utm.items() if v and k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _insert_new(
    conn: Connection, table: Table, rows: list[dict[str, Any]], returning: tuple[Column[Any], ...]
) -> Iterable[Row[Any]]:
    """Insert the rows, skipping any whose code or key is stored already; ``returning`` of
    those inserted. PostgreSQL gets the columns as arrays in a statement whose text never
    changes (prepared once), not a VALUES list of a few thousand parameters that the driver
    parses again for every batch (10 ms a batch of 200 deliveries). Every row of a batch has
    the same ``created_at``."""
    if conn.dialect.name != "postgresql":
        return conn.execute(insert_on_conflict(conn, table).returning(*returning), rows)
    statement = _pg_insert(table, tuple(rows[0]), tuple(c.name for c in returning))
    arrays = {f"a_{name}": [r[name] for r in rows] for name in rows[0] if name != "created_at"}
    return conn.execute(statement, arrays | {"created_at": rows[0]["created_at"]})


@lru_cache(maxsize=8)
def _pg_insert(table: Table, names: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    texts = [name for name in names if name != "created_at"]
    given = (
        func.unnest(*(bindparam(f"a_{name}", type_=postgresql.ARRAY(Text)) for name in texts))
        .table_valued(*texts)
        .render_derived(name="given")
    )
    values = [
        bindparam("created_at", type_=UTCDateTime) if n == "created_at" else given.c[n]
        for n in names
    ]
    return (
        postgresql.insert(table)
        .from_select(list(names), select(*values))
        .on_conflict_do_nothing()
        .returning(*(table.c[name] for name in returning))
    )


def _by_key(found: Iterable[Any]) -> dict[tuple[Any, ...], str]:
    """(code, *key) rows as key -> code."""
    return {tuple(row[1:]): str(row[0]) for row in found}


def _store_codes(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    key: tuple[str, ...],
    new_code: Callable[[], str],
) -> dict[tuple[Any, ...], str]:
    """``key`` -> code for ``rows``, each stored once whoever asks first.

    Insert every row with a fresh code, ignoring rows already there, and take the codes the
    insert returns. Only rows it skipped are read back: those stored before (a delivery tried
    again, or a concurrent call for it) and, vanishingly rarely, a code already taken, which
    is tried again with a new one. The first attempt of a batch reads nothing."""
    if not rows:
        return {}
    columns = (table.c.code, *(table.c[k] for k in key))
    stored: dict[tuple[Any, ...], str] = {}
    missing = rows
    for _ in range(_ATTEMPTS):
        found = _insert_new(conn, table, [{**r, "code": new_code()} for r in missing], columns)
        stored.update(_by_key(found))
        missing = [r for r in missing if tuple(r[k] for k in key) not in stored]
        if not missing:
            return stored
        before = select(*columns).where(
            table.c.delivery_id.in_(sorted({r["delivery_id"] for r in missing}))
        )
        stored.update(_by_key(conn.execute(before)))
        missing = [r for r in missing if tuple(r[k] for k in key) not in stored]
        if not missing:
            return stored
    raise RuntimeError(
        f"could not store codes in {table.name} for {rows[0]['delivery_id']} and others"
    )


@dataclass(frozen=True)
class LinkRequest:
    """One delivery whose post needs tracked links."""

    delivery_id: str
    story: Story
    channel: str
    variant: str | None


def prepare_links_many(
    conn: Connection, settings: Settings, requests: Sequence[LinkRequest]
) -> list[Links]:
    """Tracked URLs for every link of each request's story, and its offer code if any: a whole
    batch of deliveries in a few statements."""
    base = settings.tracking_base_url
    now = datetime.now(UTC)
    link_rows: list[dict[str, Any]] = []
    offer_rows: list[dict[str, Any]] = []
    written: list[dict[str, str]] = []
    for r in requests:
        common = {
            "delivery_id": r.delivery_id,
            "story": r.story.slug,
            "channel": r.channel,
            "variant": r.variant,
            "region": r.story.region,
            "created_at": now,
        }
        utm = {
            "utm_source": r.channel,
            "utm_medium": utm_medium(settings, r.channel),
            "utm_campaign": r.story.slug,
            "utm_content": r.variant or "",
        }
        links = story_links(r.story)
        written.append(links)
        link_rows += [
            {**common, "original": a, "target": tagged_target(a, utm)}
            for a in dict.fromkeys(links.values())
        ]
        if r.story.offer:
            offer_rows.append({**common, "offer": r.story.offer})
    stored = _store_codes(
        conn, links_table, link_rows, ("delivery_id", "original"), codes.new_link_code
    )
    prefix = offer_prefix(settings)
    offers = _store_codes(
        conn, offer_codes, offer_rows, ("delivery_id",), lambda: codes.new_offer_code(prefix)
    )
    result = []
    for r, links in zip(requests, written, strict=True):
        urls: dict[str, str] = {}
        for text, absolute in links.items():
            urls[text] = urls[absolute] = f"{base}/go/{stored[r.delivery_id, absolute]}"
        result.append(Links(urls=urls, offer_code=offers.get((r.delivery_id,))))
    return result


def prepare_links(
    conn: Connection,
    settings: Settings,
    *,
    delivery_id: str,
    story: Story,
    channel: str,
    variant: str | None,
) -> Links:
    """Tracked URLs for every link of ``story`` on this delivery, and its offer code if any."""
    request = LinkRequest(delivery_id, story, channel, variant)
    return prepare_links_many(conn, settings, [request])[0]


@dataclass(frozen=True)
class StoredLink:
    delivery_id: str
    channel: str
    variant: str | None
    tracked: str
    original: str
    offer_code: str | None


def stored_links(conn: Connection, settings: Settings, story: str) -> list[StoredLink]:
    """Every tracked link made for a story's deliveries (for ``storyloop links``)."""
    base = settings.tracking_base_url
    offers = dict(
        conn.execute(
            select(offer_codes.c.delivery_id, offer_codes.c.code).where(
                offer_codes.c.story == story
            )
        ).all()
    )
    query = (
        select(
            links_table.c.delivery_id,
            links_table.c.channel,
            links_table.c.variant,
            links_table.c.code,
            links_table.c.original,
        )
        .where(links_table.c.story == story)
        .order_by(links_table.c.channel, links_table.c.variant, links_table.c.created_at)
    )
    return [
        StoredLink(d, ch, v, f"{base}/go/{code}", original, offers.get(d))
        for d, ch, v, code, original in conn.execute(query)
    ]
