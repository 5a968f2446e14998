"""Referral codes: a customer's own code to give a friend, handed out at the till.

A referral code is made when a redemption is recorded and stands for that customer (the reader
behind a personal code, else the sale itself), so a customer who comes back gets the same code.
It also carries the chain's origin: the story x channel x variant the customer's own first
visit was credited to. A friend who redeems it is credited to that origin, so a chain of
friends stays with the post that started it; the referrer is counted up to the owner's cap and
earns rewards by the owner's rule (``STORYLOOP["referrals"]``, read by :func:`rules_of`).

Counts are taken like the shop's limits: one conditional ``UPDATE`` (``friends < cap``,
``rewards_given`` below what was earned), so two tills at once cannot pass a cap or hand over
one reward twice. Tables: migration ``0009_referral``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    delete,
    func,
    select,
    update,
)

from publisher.db import UTCDateTime, insert_on_conflict, metadata
from publisher.settings import ReferralSettings, Settings
from publisher.tracking import codes
from publisher.tracking.conversions import Attribution

referral_codes = Table(
    "referral_codes",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("referrer", String(300), nullable=False, unique=True),  # reader:<id> | sale:<key>
    Column("sale_key", String(200), nullable=False),  # the redemption it was handed out at
    Column("offer_code", String(32), nullable=False),  # the code redeemed at that visit
    Column("reader", String(64)),  # the reader behind that code, if it was a personal one
    Column("offer_story", String(200), nullable=False),  # whose offer a friend is given
    Column("store", String(100)),
    Column("delivery_id", String(200), nullable=False),  # the chain's origin
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("friends", Integer, nullable=False),
    Column("rewards_given", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_referral_codes_sale", "sale_key"),
)

referral_credits = Table(
    "referral_credits",
    metadata,
    Column("friend_sale", String(200), primary_key=True),  # the friend's redemption identity
    Column("code", String(32), nullable=False),
    Column("friend_code", String(32), nullable=False),  # the code redeemed at the friend's sale
    Column("store", String(100)),
    Column("delivery_id", String(200), nullable=False),  # the chain's origin, copied
    Column("story", String(200), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("variant", String(50)),
    Column("region", String(100)),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_referral_credits_code", "code"),
    Index("ix_referral_credits_group", "story", "channel", "variant", "region"),
)

DEFAULT_CAP = ReferralSettings.max_per_referrer  # one place: the settings
_ATTEMPTS = 8


@dataclass(frozen=True)
class Rules:
    """The owner's referral rule. ``reward`` is what the referrer is given for every
    ``friends_per_reward`` friends; ``cap`` is how many friends one referrer may bring."""

    reward: str
    friends_per_reward: int = 1
    cap: int = DEFAULT_CAP


def rules_of(settings: Settings) -> Rules | None:
    """``STORYLOOP["referrals"]`` (read and checked with the settings); None when the owner has
    not set it (no codes handed out)."""
    raw = settings.engine.referrals
    if raw is None:
        return None
    return Rules(raw.reward, raw.friends_per_reward, raw.max_per_referrer)


# --------------------------------------------------------------------------- handing out


@dataclass(frozen=True)
class Visit:
    """The redemption a code is handed out at: what was redeemed and where it is credited."""

    sale_key: str
    code: str
    reader: str | None
    offer_story: str
    store: str | None
    attribution: Attribution


def referrer_of(visit: Visit) -> str:
    """One customer as far as the till can know: the phone that claimed a personal code,
    else the sale (a printed code tells nothing about who used it)."""
    return f"reader:{visit.reader}" if visit.reader else f"sale:{visit.sale_key}"


def hand_out(conn: Connection, visit: Visit, prefix: str, now: datetime) -> str:
    """The customer's referral code, made at their first visit and the same ever after."""
    referrer = referrer_of(visit)
    found = _code_of(conn, referrer)
    if found:
        return found
    row = {
        "referrer": referrer,
        "sale_key": visit.sale_key,
        "offer_code": visit.code,
        "reader": visit.reader,
        "offer_story": visit.offer_story,
        "store": visit.store,
        **visit.attribution.row(),
        "friends": 0,
        "rewards_given": 0,
        "created_at": now,
    }
    for _ in range(_ATTEMPTS):
        code = codes.new_offer_code(prefix)
        if code_taken(conn, code):
            continue
        conn.execute(insert_on_conflict(conn, referral_codes, values={"code": code, **row}))
        found = _code_of(conn, referrer)
        if found:
            return found
    raise RuntimeError("could not make a referral code")


def code_taken(conn: Connection, code: str) -> bool:
    """Whether any kind of code (a post's, a personal one, a referral) has this text."""
    from publisher.shop.schema import personal_codes
    from publisher.tracking.schema import offer_codes

    for table in (offer_codes, personal_codes, referral_codes):
        if conn.execute(select(table.c.code).where(table.c.code == code)).first():
            return True
    return False


def _code_of(conn: Connection, referrer: str) -> str | None:
    found = conn.execute(
        select(referral_codes.c.code).where(referral_codes.c.referrer == referrer)
    ).scalar()
    return str(found) if found else None


def code_for_sale(conn: Connection, sale_key: str) -> str | None:
    """The referral code handed out at this sale, if any (a confirmation shown again)."""
    found = conn.execute(
        select(referral_codes.c.code).where(referral_codes.c.sale_key == sale_key)
    ).scalar()
    return str(found) if found else None


@dataclass(frozen=True)
class Referral:
    code: str
    sale_key: str
    offer_code: str
    reader: str | None
    offer_story: str
    store: str | None
    origin: Attribution
    friends: int
    rewards_given: int

    def earned(self, rules: Rules) -> int:
        return self.friends // rules.friends_per_reward

    def due(self, rules: Rules) -> int:
        """Rewards earned and not yet handed over."""
        return max(0, self.earned(rules) - self.rewards_given)


def find(conn: Connection, code: str) -> Referral | None:
    row = conn.execute(select(referral_codes).where(referral_codes.c.code == code)).first()
    if row is None:
        return None
    origin = Attribution(row.delivery_id, row.story, row.channel, row.variant, row.region)
    return Referral(
        str(row.code),
        str(row.sale_key),
        str(row.offer_code),
        row.reader,
        str(row.offer_story),
        row.store,
        origin,
        int(row.friends),
        int(row.rewards_given),
    )


# --------------------------------------------------------------------------- a friend's visit


class Refusal(Enum):
    """Why a friend's redemption is not credited; each has a sentence the till says aloud."""

    UNKNOWN = "referral_unknown"
    SAME_RECEIPT = "referral_same_receipt"
    SAME_CODE = "referral_same_code"
    SAME_PERSON = "referral_same_person"
    CAP = "referral_cap"


@dataclass(frozen=True)
class FriendVisit:
    sale_key: str | None  # None while only the code has been checked
    code: str  # the code redeemed at the friend's sale (the referral code itself, or another)
    reader: str | None  # the reader behind that code, if personal


def refusals(referral: Referral, friend: FriendVisit, rules: Rules) -> list[Refusal]:
    """What makes this an obvious self-referral, or a referrer past the owner's cap."""
    found: list[Refusal] = []
    if friend.sale_key is not None and friend.sale_key == referral.sale_key:
        found.append(Refusal.SAME_RECEIPT)
    if friend.code == referral.offer_code:
        found.append(Refusal.SAME_CODE)
    if friend.reader and friend.reader == referral.reader:
        found.append(Refusal.SAME_PERSON)
    if referral.friends >= rules.cap:
        found.append(Refusal.CAP)
    return found


def credit(
    conn: Connection,
    referral: Referral,
    friend: FriendVisit,
    store: str | None,
    at: datetime,
    rules: Rules,
) -> bool:
    """Count the friend for the referrer (False: the cap was reached meanwhile, or this sale
    was credited before). Inside the caller's transaction, with the friend's conversion."""
    assert friend.sale_key is not None
    taken = conn.execute(
        update(referral_codes)
        .where(referral_codes.c.code == referral.code, referral_codes.c.friends < rules.cap)
        .values(friends=referral_codes.c.friends + 1)
    )
    if not taken.rowcount:
        return False
    row = {
        "friend_sale": friend.sale_key,
        "code": referral.code,
        "friend_code": friend.code,
        "store": store,
        **referral.origin.row(),
        "at": at,
    }
    inserted = conn.execute(insert_on_conflict(conn, referral_credits, values=row))
    if not inserted.rowcount:
        _less(conn, referral.code)
        return False
    return True


def _less(conn: Connection, code: str) -> None:
    conn.execute(
        update(referral_codes)
        .where(referral_codes.c.code == code, referral_codes.c.friends > 0)
        .values(friends=referral_codes.c.friends - 1)
    )


def forget_sale(conn: Connection, sale_key: str) -> None:
    """An undone redemption: its credit goes, and a code handed out at it that no friend has
    used yet goes too."""
    code = conn.execute(
        select(referral_credits.c.code).where(referral_credits.c.friend_sale == sale_key)
    ).scalar()
    if code is not None:
        conn.execute(delete(referral_credits).where(referral_credits.c.friend_sale == sale_key))
        _less(conn, str(code))
    conn.execute(
        delete(referral_codes).where(
            referral_codes.c.sale_key == sale_key, referral_codes.c.friends == 0
        )
    )


# --------------------------------------------------------------------------- rewards


def give_reward(conn: Connection, code: str, rules: Rules) -> bool:
    """Mark one earned reward as handed over; False when none is due (or another till was
    quicker)."""
    c = referral_codes.c
    done = conn.execute(
        update(referral_codes)
        .where(c.code == code, (c.rewards_given + 1) * rules.friends_per_reward <= c.friends)
        .values(rewards_given=referral_codes.c.rewards_given + 1)
    )
    return bool(done.rowcount)


# --------------------------------------------------------------------------- report


def brought_by_customers(
    conn: Connection, start: datetime | None = None, end: datetime | None = None
) -> dict[tuple[str, str], int]:
    """(story, channel) of the chain's origin -> friends credited in [start, end)."""
    c = referral_credits.c
    query = select(c.story, c.channel, func.count()).group_by(c.story, c.channel)
    if start is not None:
        query = query.where(c.at >= start)
    if end is not None:
        query = query.where(c.at < end)
    return {(str(s), str(ch)): int(n) for s, ch, n in conn.execute(query)}
