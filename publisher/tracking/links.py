"""Tracked links: every link a post may contain becomes ``<base>/go/<code>`` before it goes out.

:func:`prepare_links` runs inside the engine's publish transaction, possibly in several processes
at once for different deliveries: rows are inserted with ``ON CONFLICT DO NOTHING`` and read back,
so a second call for the same delivery returns the codes the first one stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from bs4 import BeautifulSoup
from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from channels.base import Links
from publisher.model import Story
from publisher.settings import Settings
from publisher.tracking import codes
from publisher.tracking.schema import links as links_table
from publisher.tracking.schema import offer_codes

MEDIUM_BY_TYPE = {
    "email": "email",
    "webhook": "referral",
    "outbox": "social",
    "offline": "offline",
}
DEFAULT_MEDIUM = "social"
OFFLINE_CHANNEL = "offline"
SKIPPED_PREFIXES = ("mailto:", "tel:", "sms:", "javascript:", "data:", "#")
_ATTEMPTS = 5


def offer_prefix(settings: Settings) -> str:
    tracking = settings.engine.get("tracking") or {}
    return str(tracking.get("offer_prefix", codes.DEFAULT_OFFER_PREFIX)).upper()


def utm_medium(settings: Settings, channel: str) -> str:
    kind = str(settings.channels.get(channel, {}).get("type", channel))
    return MEDIUM_BY_TYPE.get(kind, DEFAULT_MEDIUM)


def story_links(story: Story) -> dict[str, str]:
    """Every link a post may contain, as written -> absolute; the story's own URL first."""
    return dict(_links_in(story.url, story.html or ""))


@lru_cache(maxsize=1024)
def _links_in(url: str, html: str) -> tuple[tuple[str, str], ...]:
    """Parsed once per story text: a story is published on many channels and variants."""
    found: dict[str, str] = {url: url}
    for anchor in BeautifulSoup(html, "html.parser").find_all("a", href=True):
        href = str(anchor["href"]).strip()
        if not href or href.lower().startswith(SKIPPED_PREFIXES):
            continue
        absolute = urljoin(url, href)
        if urlsplit(absolute).scheme in ("http", "https"):
            found.setdefault(href, absolute)
    return tuple(found.items())


def tagged_target(url: str, utm: Mapping[str, str]) -> str:
    """``url`` with the utm parameters added; the editor's own values win."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in query}
    query += [(k, v) for k, v in utm.items() if v and k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def _link_codes(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, str]:
    """original -> code for one delivery's links, stored once whoever asks first.

    Insert every row with a fresh code, ignoring rows the delivery already has, then read back:
    a concurrent call for the same delivery (or, vanishingly rarely, a code already taken) just
    loses its insert, and the read returns what was stored."""
    query = select(links_table.c.original, links_table.c.code).where(
        links_table.c.delivery_id == rows[0]["delivery_id"]
    )
    missing = rows
    for _ in range(_ATTEMPTS):
        _insert(conn, links_table, [{**r, "code": codes.new_link_code()} for r in missing])
        stored = {str(o): str(c) for o, c in conn.execute(query)}
        missing = [r for r in rows if r["original"] not in stored]
        if not missing:
            return stored
    raise RuntimeError(f"could not store tracked links for delivery {rows[0]['delivery_id']}")


def _offer_code(conn: Connection, row: dict[str, Any], prefix: str) -> str:
    where = offer_codes.c.delivery_id == row["delivery_id"]
    for _ in range(_ATTEMPTS):
        existing = conn.execute(select(offer_codes.c.code).where(where)).scalar()
        if existing:
            return str(existing)
        _insert(conn, offer_codes, [{**row, "code": codes.new_offer_code(prefix)}])
    raise RuntimeError(f"could not store an offer code for delivery {row['delivery_id']}")


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
    base = settings.tracking_base_url
    now = datetime.now(UTC)
    common = {
        "delivery_id": delivery_id,
        "story": story.slug,
        "channel": channel,
        "variant": variant,
        "region": story.region,
        "created_at": now,
    }
    utm = {
        "utm_source": channel,
        "utm_medium": utm_medium(settings, channel),
        "utm_campaign": story.slug,
        "utm_content": variant or "",
    }
    written = story_links(story)
    targets = dict.fromkeys(written.values())
    rows = [{**common, "original": a, "target": tagged_target(a, utm)} for a in targets]
    stored = _link_codes(conn, rows)
    urls: dict[str, str] = {}
    for text, absolute in written.items():
        urls[text] = urls[absolute] = f"{base}/go/{stored[absolute]}"
    offer = None
    if story.offer:
        offer = _offer_code(conn, {**common, "offer": story.offer}, offer_prefix(settings))
    return Links(urls=urls, offer_code=offer)


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
