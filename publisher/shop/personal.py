"""Personal codes: a reader's own code for a story's offer, claimed on the site.

The code is bound to the reader's last tracked click (the ``sl_cid`` cookie ``/go/`` set on the
tracker's host), so a sale in the shop is credited to the story x channel x variant that brought
them; without one it is credited to the ``site`` channel. A reader (a random id in a cookie,
never an address) claiming the same offer again gets the same code back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from publisher.db import insert_on_conflict
from publisher.shop.offers import Offer
from publisher.shop.schema import personal_codes
from publisher.tracking import codes, referrals
from publisher.tracking.conversions import Attribution, by_click
from publisher.tracking.links import tagged_target
from publisher.tracking.schema import links

SITE_CHANNEL = "site"
QR_VARIANT = "qr"
_ATTEMPTS = 8


@dataclass(frozen=True)
class Claimed:
    code: str
    via: str  # link | site
    fresh: bool


def site_attribution(offer: Offer) -> Attribution:
    return Attribution(f"site-{offer.story}", offer.story, SITE_CHANNEL, None, offer.region)


def claim(
    conn: Connection, offer: Offer, reader: str, click_id: str | None, prefix: str
) -> Claimed:
    existing = _existing(conn, offer.story, reader)
    if existing:
        return Claimed(existing[0], existing[1], False)
    attribution = by_click(conn, click_id) if click_id else None
    via = "link" if attribution else "site"
    credited = attribution or site_attribution(offer)
    row = {
        **credited.row(),
        "offer_story": offer.story,
        "offer": offer.text,
        "reader": reader,
        "via": via,
        "click_id": click_id if attribution else None,
        "created_at": datetime.now(UTC),
    }
    for _ in range(_ATTEMPTS):
        code = codes.new_offer_code(prefix)
        if referrals.code_taken(conn, code):
            continue
        conn.execute(insert_on_conflict(conn, personal_codes, values={"code": code, **row}))
        stored = _existing(conn, offer.story, reader)
        if stored:
            return Claimed(stored[0], stored[1], stored[0] == code)
    raise RuntimeError(f"could not make a personal code for {offer.story}")


def _existing(conn: Connection, story: str, reader: str) -> tuple[str, str] | None:
    found = conn.execute(
        select(personal_codes.c.code, personal_codes.c.via).where(
            personal_codes.c.offer_story == story, personal_codes.c.reader == reader
        )
    ).first()
    return (str(found[0]), str(found[1])) if found else None


def codes_of(conn: Connection, reader: str) -> dict[str, str]:
    """offer story -> code, for the reader's own page."""
    rows = conn.execute(
        select(personal_codes.c.offer_story, personal_codes.c.code).where(
            personal_codes.c.reader == reader
        )
    )
    return {str(s): str(c) for s, c in rows}


def site_qr_link(conn: Connection, offer: Offer) -> str:
    """The code of the tracked link a story page's QR code goes through (``site`` channel,
    variant ``qr``), stored on first use."""
    assert offer.url
    delivery = f"site-{offer.story}"
    utm = {
        "utm_source": SITE_CHANNEL,
        "utm_medium": QR_VARIANT,
        "utm_campaign": offer.story,
        "utm_content": QR_VARIANT,
    }
    row = {
        "delivery_id": delivery,
        "story": offer.story,
        "channel": SITE_CHANNEL,
        "variant": QR_VARIANT,
        "region": offer.region,
        "original": offer.url,
        "target": tagged_target(offer.url, utm),
        "created_at": datetime.now(UTC),
    }
    query = select(links.c.code).where(
        links.c.delivery_id == delivery, links.c.original == offer.url
    )
    for _ in range(_ATTEMPTS):
        found = conn.execute(query).scalar()
        if found:
            return str(found)
        fresh = {"code": codes.new_link_code(), **row}
        conn.execute(insert_on_conflict(conn, links, values=fresh))
    raise RuntimeError(f"could not store the QR link of {offer.story}")
