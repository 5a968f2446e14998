"""A seeded history for the dashboard's tests: stories, deliveries in every calendar state,
clicks (through the real journal and ingest), online sales and in-shop redemptions.

The history is first written down as plain events (:class:`History`); the tests compute what
the dashboard must show from these events with their own arithmetic, never with the code under
test, and :func:`write` stores the same events through the engine's own paths.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert

from publisher import ledger
from publisher.settings import Settings
from publisher.shop.offers import OfferBook, bare_offer
from publisher.shop.personal import claim
from publisher.shop.redeem import Sale as Sale_
from publisher.shop.redeem import Status
from publisher.shop.redeem import redeem as redeem_code
from publisher.shop.schema import personal_codes
from publisher.shop.stores import stores_of
from publisher.tracking import prepare_links
from publisher.tracking.conversions import record_online
from publisher.tracking.ingest import ingest
from publisher.tracking.journal import Click as JournalClick
from publisher.tracking.journal import Journal, journal_dir
from publisher.tracking.schema import conversions as conversions_table
from tests.tracking.trackkit import make_story

ZONE = "Asia/Shanghai"
FIRST_DAY = date(2026, 3, 2)  # a Monday
DAYS = 14
STORIES = {
    "kitchen": "stories",
    "tea-room": "stories",
    "rattan-chair": "stories",
    "plum-rain": "stories",
    "chen-review": "testimonials",
    "lin-review": "testimonials",
}
VARIANTS = ("A", "B")
# readers per post, chance a reader buys online, chance they redeem in the shop via their click
CHANNELS = {
    "mastodon": (16, 0.12, 0.10),
    "telegram": (11, 0.0, 0.0),
    "email": (7, 0.06, 0.04),
}
REGION_OF = {
    "kitchen": "xiamen",
    "tea-room": "xiamen",
    "chen-review": "xiamen",
    "rattan-chair": "berlin",
    "plum-rain": "berlin",
    "lin-review": "berlin",
    "winter-flat": "xiamen",
}
STORE_OF = {"xiamen": "xiamen-1", "berlin": "berlin-1"}  # where each region's readers shop
CURRENCY_OF = {"xiamen-1": "CNY", "berlin-1": "EUR"}


@dataclass(frozen=True)
class Click:
    delivery: str
    reader: str  # 32 hex, as the tracker's daily hash
    at: datetime  # UTC
    bot: bool = False


@dataclass(frozen=True)
class Sale:
    delivery: str
    kind: str  # sale | redemption
    value_minor: int
    currency: str
    at: datetime
    click: int | None  # index into History.clicks when made through a click
    store: str | None = None
    order_id: str = ""


@dataclass(frozen=True)
class Claim:
    """A personal code a reader claimed on the site after their click."""

    click: int  # index into History.clicks
    at: datetime


@dataclass(frozen=True)
class Delivery:
    id: str
    story: str
    channel: str
    variant: str | None
    state: str
    at: datetime  # sent_at for sent, else due
    url: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass
class History:
    deliveries: list[Delivery] = field(default_factory=list)
    clicks: list[Click] = field(default_factory=list)
    sales: list[Sale] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)

    def delivery(self, id_: str) -> Delivery:
        return next(d for d in self.deliveries if d.id == id_)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(ZONE)).astimezone(
        UTC
    )


def history(seed: int = 7) -> History:
    rng = random.Random(seed)
    h = History()
    day_of = 0
    for story in STORIES:
        for variant in VARIANTS:
            for channel, (readers, buy, redeem) in CHANNELS.items():
                day = FIRST_DAY + timedelta(days=day_of % (DAYS - 3))
                id_ = ledger.delivery_id(story, channel, variant)
                sent = local(day, 9, 30)
                url = f"https://{channel}.example/posts/{id_}"
                h.deliveries.append(Delivery(id_, story, channel, variant, "sent", sent, url))
                # one bot per post, then readers over the next two local days, in office hours
                h.clicks.append(Click(id_, "0" * 32, sent + timedelta(minutes=1), bot=True))
                count = readers + (4 if variant == "B" and story == "kitchen" else 0)
                for n in range(count):
                    when = local(day + timedelta(days=n % 2), 10 + n % 6, rng.randrange(60))
                    reader = f"{rng.getrandbits(128):032x}"
                    h.clicks.append(Click(id_, reader, when))
                    if n % 3 == 0:  # some readers tap twice
                        h.clicks.append(Click(id_, reader, when + timedelta(minutes=2)))
                    index = len(h.clicks) - 1
                    if rng.random() < buy * (2 if variant == "B" else 1):
                        value = rng.choice((19900, 29950, 49900))
                        h.sales.append(
                            Sale(id_, "sale", value, "CNY", when + timedelta(hours=1), index)
                        )
                    if rng.random() < redeem * 2:  # half of those who claim a code use it
                        h.claims.append(Claim(index, when + timedelta(minutes=5)))
                        if rng.random() < 0.5:
                            store = STORE_OF[REGION_OF[story]]
                            h.sales.append(
                                Sale(
                                    id_,
                                    "redemption",
                                    rng.choice((29900, 89900)),
                                    CURRENCY_OF[store],
                                    when + timedelta(hours=3),
                                    index,
                                    store,
                                )
                            )
                day_of += 1
    # one reader opens two mastodon posts on the same day (one daily hash): one unique reader
    # in the total, one reader of each post
    first, second = [d for d in h.deliveries if d.channel == "mastodon"][:2]
    again = local(max(first.at, second.at).astimezone(ZoneInfo(ZONE)).date(), 12)
    h.clicks += [Click(first.id, "f" * 32, again), Click(second.id, "f" * 32, again)]
    # code-only redemptions: codes printed in mastodon posts, redeemed in the shop
    for n, d in enumerate(x for x in h.deliveries if x.channel == "mastodon"):
        if n % 3 == 0:
            store = STORE_OF[REGION_OF[d.story]]
            h.sales.append(
                Sale(
                    d.id,
                    "redemption",
                    15000,
                    CURRENCY_OF[store],
                    d.at + timedelta(days=1),
                    None,
                    store,
                )
            )
    h.sales = [replace(s, order_id=f"o-{i}") for i, s in enumerate(h.sales)]
    # the calendar's other states, on a story of their own
    last = FIRST_DAY + timedelta(days=DAYS - 1)
    for channel, state, error, nxt in (
        ("mastodon", ledger.FAILED, "content rejected: 422 Validation failed: Text too long", None),
        ("telegram", ledger.UNKNOWN, "timeout: the post may have gone out", None),
        ("email", ledger.PLANNED, None, local(last, 18)),
        ("bluesky", ledger.RETRY_WAIT, "rate limited: 429", local(last, 20)),
    ):
        id_ = ledger.delivery_id("winter-flat", channel, None)
        at = local(last - timedelta(days=1), 15) if nxt is None else nxt
        h.deliveries.append(
            Delivery(id_, "winter-flat", channel, None, state, at, None, error, nxt)
        )
    return h


def _ledger_row(d: Delivery, category: str) -> dict[str, object]:
    return {
        "id": d.id,
        "story": d.story,
        "channel": d.channel,
        "variant": d.variant,
        "region": REGION_OF[d.story],
        "category": category,
        "timezone": ZONE,
        "content_hash": "h",
        "due_at": d.at,
        "state": d.state,
        "attempts": 1 if d.state != ledger.PLANNED else 0,
        "next_attempt_at": d.next_attempt_at,
        "url": d.url,
        "remote_id": d.url,
        "last_error": d.error,
        "sent_at": d.at if d.state == ledger.SENT else None,
        "created_at": d.at - timedelta(days=1),
        "updated_at": d.at,
    }


def write(engine: Engine, settings: Settings, h: History) -> dict[str, str]:
    """Store the history; returns each delivery's offer code."""
    offer_codes: dict[str, str] = {}
    link_codes: dict[str, str] = {}
    with engine.begin() as conn:
        conn.execute(
            insert(ledger.deliveries),
            [_ledger_row(d, STORIES.get(d.story, "stories")) for d in h.deliveries],
        )
        for d in h.deliveries:
            if d.state != ledger.SENT:
                continue
            story = make_story(slug=d.story, category=STORIES[d.story], region=REGION_OF[d.story])
            links = prepare_links(
                conn,
                settings,
                delivery_id=d.id,
                story=story,
                channel=d.channel,
                variant=d.variant,
            )
            link_codes[d.id] = links.get(story.url).rsplit("/", 1)[1]
            assert links.offer_code
            offer_codes[d.id] = links.offer_code
    journal = Journal(journal_dir(settings.var_dir))
    click_ids = []
    for c in h.clicks:
        code = link_codes[c.delivery]
        click_id = journal.new_click_id(code)
        kind, agent, reader = ("bot", "mastodon", None) if c.bot else ("reader", None, c.reader)
        journal.append(JournalClick(click_id, code, c.at.timestamp(), kind, agent, reader, None))
        click_ids.append(click_id)
    journal.close()
    ingest(engine, journal_dir(settings.var_dir))
    shop_stores = stores_of(settings)
    book = OfferBook(settings.manifest_path, shop_stores)
    personal: dict[int, str] = {}
    with engine.begin() as conn:
        for taken in h.claims:
            d = h.delivery(h.clicks[taken.click].delivery)
            offer = bare_offer(d.story, "10% off", None, shop_stores)
            claimed = claim(conn, offer, f"reader-{taken.click}", click_ids[taken.click], "CC")
            assert claimed.via == "link"
            personal[taken.click] = claimed.code
            conn.execute(  # claimed then, not now
                personal_codes.update()
                .where(personal_codes.c.code == claimed.code)
                .values(created_at=taken.at)
            )
        for s in h.sales:
            if s.kind == "sale":
                assert s.click is not None
                payload = {
                    "click_id": click_ids[s.click],
                    "kind": "sale",
                    "currency": s.currency,
                    "value": f"{s.value_minor / 100:.2f}",
                    "order_id": s.order_id,
                }
                record_online(conn, payload, "CNY")
                conn.execute(
                    conversions_table.update()
                    .where(conversions_table.c.dedupe_key == f"order:{s.order_id}")
                    .values(at=s.at)
                )
                continue
            assert s.store is not None
            code = offer_codes[s.delivery] if s.click is None else personal[s.click]
            sale = Sale_(
                code=code,
                store=shop_stores[s.store],
                value_minor=s.value_minor,
                currency=s.currency,
                receipt=s.order_id,
                source="till",
                account="seed",
                at=s.at,
            )
            outcome = redeem_code(conn, sale, book, shop_stores)
            assert outcome.status is Status.RECORDED, (s, outcome)
    return offer_codes
