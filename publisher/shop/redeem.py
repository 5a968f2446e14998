"""One redemption identity and one set of rules for every path (till, API, CLI, CSV import).

An in-shop sale is keyed ``shop:<store>:<receipt>``, an online one ``order:<order id>``: separate
namespaces, so a receipt number that equals an online order id is still its own sale, the same
receipt entered at the till and by CLI counts once, and two stores may reuse a number. A code
is checked against its offer's rules (store, end, limits) before anything is written; a limit
is then taken by a conditional ``UPDATE`` on ``redemption_counts``, so two tills redeeming the
last use at once cannot both get it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, delete, select, update

from publisher.db import insert_on_conflict
from publisher.shop.offers import Offer, OfferBook, bare_offer
from publisher.shop.schema import personal_codes, redemption_counts, redemption_requests
from publisher.shop.stores import Store
from publisher.tracking import codes, referrals
from publisher.tracking.conversions import Attribution
from publisher.tracking.schema import conversions, offer_codes

UNDO_MINUTES = 5
CONFUSABLE = set("0O1I")


class Reason(Enum):
    """Why a code is refused (or accepted with a warning); each has a sentence to say aloud."""

    MISTYPED = "mistyped"
    UNKNOWN = "unknown"
    OTHER_STORE = "other_store"
    EXPIRED = "expired"
    USED = "used"
    CODE_LIMIT = "code_limit"
    CUSTOMER_LIMIT = "customer_limit"
    TOTAL_LIMIT = "total_limit"
    # a friend's visit with a referral code (publisher.tracking.referrals); never accepted
    REFERRAL_OFF = "referral_off"
    REFERRAL_UNKNOWN = referrals.Refusal.UNKNOWN.value
    REFERRAL_SAME_RECEIPT = referrals.Refusal.SAME_RECEIPT.value
    REFERRAL_SAME_CODE = referrals.Refusal.SAME_CODE.value
    REFERRAL_SAME_PERSON = referrals.Refusal.SAME_PERSON.value
    REFERRAL_CAP = referrals.Refusal.CAP.value


SENTENCES = {
    Reason.MISTYPED: "This is not a complete code: codes have no 0, O, 1 or I, and the last "
    "character checks the others. Please type it again from the customer's screen.",
    Reason.UNKNOWN: "There is no such code. Please check it with the customer.",
    Reason.OTHER_STORE: "This offer is not valid in this store; it is valid at: {stores}.",
    Reason.EXPIRED: "This offer ended on {until}.",
    Reason.USED: "This code has already been used, on {when} at {store}.",
    Reason.CODE_LIMIT: "This code has been used {uses} times, which is its limit.",
    Reason.CUSTOMER_LIMIT: "This customer has already used this offer {uses} times, its limit.",
    Reason.TOTAL_LIMIT: "This offer has run out: all {uses} have been used.",
    Reason.REFERRAL_OFF: "Referral codes are switched off in this shop's settings.",
    Reason.REFERRAL_UNKNOWN: "There is no such referral code. Please check it with the customer.",
    Reason.REFERRAL_SAME_RECEIPT: "This is the receipt the referral code was given with: "
    "a customer cannot bring themselves.",
    Reason.REFERRAL_SAME_CODE: "This is the code the referral code was given for: a customer "
    "cannot bring themselves.",
    Reason.REFERRAL_SAME_PERSON: "This code was claimed on the same phone as the referral "
    "code's: a customer cannot bring themselves.",
    Reason.REFERRAL_CAP: "This referral code has brought {cap} friends, the most one customer "
    "can bring.",
}
REFERRAL_REASONS = frozenset(r for r in Reason if r.value.startswith("referral_"))
LIMITS = (Reason.USED, Reason.CODE_LIMIT, Reason.CUSTOMER_LIMIT, Reason.TOTAL_LIMIT)


@dataclass(frozen=True)
class Problem:
    reason: Reason
    params: Mapping[str, str] = field(default_factory=dict)

    def sentence(self) -> str:
        return SENTENCES[self.reason].format(**self.params)


@dataclass(frozen=True)
class CodeInfo:
    """A code as the till shows it: whose offer, credited to whom, how often used."""

    code: str
    kind: str  # shared | personal | referral
    offer: Offer
    attribution: Attribution
    click_id: str | None
    reader: str | None
    uses: int
    last_use: tuple[datetime, str | None] | None  # when and in which store

    @property
    def via(self) -> str:
        """``link``: the reader came through a tracked link; ``code``: only the code is known."""
        return "link" if self.click_id else "code"

    @property
    def per_code(self) -> int | None:
        """The editor's per-code limit; a personal code is single-use unless they say more."""
        if self.kind == "referral":
            return None  # one per friend's receipt, up to the owner's cap per referrer
        if self.offer.per_code is not None:
            return self.offer.per_code
        return 1 if self.kind == "personal" else None


def read_code(text: str, prefix: str) -> tuple[str | None, Reason | None]:
    """(canonical code, None) or (None, why not) for what a person typed: any case, spaces,
    dashes; the prefix may be left out or typed with 0 for O and 1 for I."""
    compact = re.sub(r"[\s\-_.·]", "", text.upper())
    body_len = codes.OFFER_BODY_LENGTH + 1
    if len(compact) == body_len:
        compact = prefix + compact
    head, tail = compact[:-body_len], compact[-body_len:]
    if head != prefix and len(head) == len(prefix):
        swapped = head.translate(str.maketrans("01", "OI"))
        head = prefix if swapped == prefix.translate(str.maketrans("01", "OI")) else head
    found = codes.normalise_offer_code(head + tail)
    if found is None:
        return None, Reason.MISTYPED
    return found, None


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def lookup(
    conn: Connection, code: str, book: OfferBook, stores: Mapping[str, Store]
) -> CodeInfo | None:
    row = conn.execute(select(personal_codes).where(personal_codes.c.code == code)).first()
    if row is not None:
        offer = book.get(row.offer_story) or bare_offer(row.offer_story, row.offer, None, stores)
        attribution = Attribution(row.delivery_id, row.story, row.channel, row.variant, row.region)
        return _info(conn, code, "personal", offer, attribution, row.click_id, row.reader)
    shared = conn.execute(select(offer_codes).where(offer_codes.c.code == code)).first()
    if shared is None:
        referral = referrals.find(conn, code)
        if referral is None:
            return None
        story = referral.offer_story
        offer = book.get(story) or bare_offer(story, "", referral.origin.region, stores)
        return _info(conn, code, "referral", offer, referral.origin, None, None)
    offer = book.get(shared.story) or bare_offer(shared.story, shared.offer, shared.region, stores)
    attribution = Attribution(
        shared.delivery_id, shared.story, shared.channel, shared.variant, shared.region
    )
    return _info(conn, code, "shared", offer, attribution, None, None)


def _info(
    conn: Connection,
    code: str,
    kind: str,
    offer: Offer,
    attribution: Attribution,
    click_id: str | None,
    reader: str | None,
) -> CodeInfo:
    last = conn.execute(
        select(conversions.c.at, conversions.c.store)
        .where(conversions.c.offer_code == code, conversions.c.kind == "redemption")
        .order_by(conversions.c.at.desc())
        .limit(1)
    ).first()
    uses = _uses(conn, "code", code)
    last_use = (_aware(last.at), last.store) if last else None
    return CodeInfo(code, kind, offer, attribution, click_id, reader, uses, last_use)


def _uses(conn: Connection, scope: str, key: str) -> int:
    found = conn.execute(
        select(redemption_counts.c.uses).where(
            redemption_counts.c.scope == scope, redemption_counts.c.key == key
        )
    ).scalar()
    return int(found or 0)


def _customer_key(info: CodeInfo) -> str | None:
    return f"{info.offer.story}:{info.reader}" if info.reader else None


def check(
    conn: Connection,
    info: CodeInfo,
    store: Store,
    now: datetime,
    stores: Mapping[str, Store],
    rules: referrals.Rules | None = None,
    *,
    friend_sale: str | None = None,
    referral: str | None = None,
) -> list[Problem]:
    """Every rule this redemption would break, in the order an assistant should hear them.

    ``referral`` is a friend's referral code given with another code (``info``); a referral
    code redeemed by itself is checked as one. ``friend_sale`` is the sale's key once the
    receipt is known (the same receipt as the referrer's is refused)."""
    found = _referral_problems(conn, info, rules, friend_sale, referral)
    offer = info.offer
    if offer.stores and store.id not in offer.stores:
        names = ", ".join(stores[s].name if s in stores else s for s in offer.stores)
        found.append(Problem(Reason.OTHER_STORE, {"stores": names}))
    if offer.until and now >= offer.until:
        last_day = (offer.until - timedelta(seconds=1)).astimezone(_zone(store))
        found.append(Problem(Reason.EXPIRED, {"until": last_day.strftime("%Y-%m-%d")}))
    found += _limit_problems(conn, info, store, stores)
    return found


def _referral_problems(
    conn: Connection,
    info: CodeInfo,
    rules: referrals.Rules | None,
    friend_sale: str | None,
    referral: str | None,
) -> list[Problem]:
    code = info.code if info.kind == "referral" else referral
    if code is None:
        return []
    if rules is None:
        return [Problem(Reason.REFERRAL_OFF)]
    found = referrals.find(conn, code)
    if found is None:
        return [Problem(Reason.REFERRAL_UNKNOWN)]
    friend = referrals.FriendVisit(friend_sale, info.code, info.reader)
    cap = {"cap": str(rules.cap)}
    return [
        Problem(Reason(r.value), cap if r is referrals.Refusal.CAP else {})
        for r in referrals.refusals(found, friend, rules)
    ]


def _zone(store: Store) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(store.timezone)


def _limit_problems(
    conn: Connection, info: CodeInfo, store: Store, stores: Mapping[str, Store]
) -> list[Problem]:
    found: list[Problem] = []
    limit = info.per_code
    if limit is not None and info.uses >= limit:
        if limit == 1 and info.last_use:
            when, where = info.last_use
            place = stores[where].name if where and where in stores else (where or "-")
            local = when.astimezone(_zone(store)).strftime("%Y-%m-%d %H:%M")
            found.append(Problem(Reason.USED, {"when": local, "store": place}))
        else:
            found.append(Problem(Reason.CODE_LIMIT, {"uses": str(info.uses)}))
    customer = _customer_key(info)
    per_customer = info.offer.per_customer
    if customer and per_customer is not None:
        used = _uses(conn, "customer", customer)
        if used >= per_customer:
            found.append(Problem(Reason.CUSTOMER_LIMIT, {"uses": str(used)}))
    total = info.offer.total
    if total is not None:
        used = _uses(conn, "offer", info.offer.story)
        if used >= total:
            found.append(Problem(Reason.TOTAL_LIMIT, {"uses": str(used)}))
    return found


# --------------------------------------------------------------------------- recording


class Status(Enum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # this sale (store + receipt, or request id) was recorded before
    REFUSED = "refused"
    UNKNOWN_CODE = "unknown_code"


@dataclass(frozen=True)
class Sale:
    code: str  # canonical
    store: Store
    value_minor: int
    currency: str
    receipt: str | None
    source: str  # till | api | cli | csv
    account: str
    at: datetime
    request_id: str | None = None
    row_key: str | None = None  # CSV rows without a receipt: a hash of the row
    referral: str | None = None  # a friend's referral code given with another code


@dataclass(frozen=True)
class Outcome:
    status: Status
    info: CodeInfo | None = None
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    key: str | None = None


def shop_key(store: str, receipt: str) -> str:
    return f"shop:{store}:{' '.join(receipt.split())}"


def sale_key(sale: Sale) -> str:
    if sale.receipt:
        return shop_key(sale.store.id, sale.receipt)
    if sale.request_id:
        return f"request:{sale.request_id}"
    if sale.row_key:
        return sale.row_key
    return "once:" + secrets.token_hex(16)


def _bump(conn: Connection, scope: str, key: str, limit: int | None) -> bool:
    """Take one use of ``key``; False when that would pass ``limit``."""
    row = {"scope": scope, "key": key, "uses": 0}
    conn.execute(insert_on_conflict(conn, redemption_counts, values=row))
    taken = (
        update(redemption_counts)
        .where(redemption_counts.c.scope == scope, redemption_counts.c.key == key)
        .values(uses=redemption_counts.c.uses + 1)
    )
    if limit is not None:
        taken = taken.where(redemption_counts.c.uses < limit)
    return bool(conn.execute(taken).rowcount)


def _give_back(conn: Connection, scope: str, key: str) -> None:
    conn.execute(
        update(redemption_counts)
        .where(
            redemption_counts.c.scope == scope,
            redemption_counts.c.key == key,
            redemption_counts.c.uses > 0,
        )
        .values(uses=redemption_counts.c.uses - 1)
    )


def _scopes(info: CodeInfo, allowed: frozenset[Reason]) -> list[tuple[str, str, int | None]]:
    """(scope, key, limit) of each count this redemption takes; a limit the owner lets the
    till pass with a warning is not enforced."""
    per_code = None if {Reason.USED, Reason.CODE_LIMIT} & allowed else info.per_code
    found: list[tuple[str, str, int | None]] = [("code", info.code, per_code)]
    customer = _customer_key(info)
    if customer:
        limit = None if Reason.CUSTOMER_LIMIT in allowed else info.offer.per_customer
        found.append(("customer", customer, limit))
    limit = None if Reason.TOTAL_LIMIT in allowed else info.offer.total
    found.append(("offer", info.offer.story, limit))
    return found


def redeem(
    conn: Connection,
    sale: Sale,
    book: OfferBook,
    stores: Mapping[str, Store],
    allowed: frozenset[Reason] = frozenset(),
    rules: referrals.Rules | None = None,
) -> Outcome:
    """Check and record one redemption inside the caller's transaction.

    ``allowed`` are the reasons the owner lets a till accept with a visible warning; anything
    else is refused. A refusal changes nothing. A friend's redemption with a referral code
    (redeemed by itself, or given as ``sale.referral``) is credited to its referrer under the
    owner's ``rules``."""
    if sale.request_id:
        earlier = _earlier(conn, sale.request_id)
        if earlier is not None:
            return earlier
    info = lookup(conn, sale.code, book, stores)
    if info is None:
        return Outcome(Status.UNKNOWN_CODE)
    key = sale_key(sale)
    same_receipt = [
        p
        for p in _referral_problems(conn, info, rules, key, sale.referral)
        if p.reason is Reason.REFERRAL_SAME_RECEIPT
    ]
    if same_receipt:  # the referrer's own sale: said so, not "already recorded"
        return Outcome(Status.REFUSED, info, tuple(same_receipt), (), key)
    if _exists(conn, key):
        return Outcome(Status.DUPLICATE, info, key=key)
    found = check(
        conn, info, sale.store, sale.at, stores, rules, friend_sale=key, referral=sale.referral
    )
    allowed = allowed - REFERRAL_REASONS
    refused = tuple(p for p in found if p.reason not in allowed)
    warnings = tuple(p for p in found if p.reason in allowed)
    if refused:
        return Outcome(Status.REFUSED, info, refused, warnings, key)
    row = {
        **info.attribution.row(),
        "dedupe_key": key,
        "kind": "redemption",
        "click_id": info.click_id,
        "offer_code": info.code,
        "value_minor": sale.value_minor,
        "currency": sale.currency,
        "order_id": sale.receipt,
        "store": sale.store.id,
        "source": sale.source,
        "at": sale.at,
        "via": info.via,
        "code_kind": info.kind,
        "account": sale.account,
        "warning": "; ".join(w.reason.value for w in warnings) or None,
    }
    inserted = conn.execute(insert_on_conflict(conn, conversions, values=row))
    if not inserted.rowcount:
        return Outcome(Status.DUPLICATE, info, key=key)
    taken: list[tuple[str, str]] = []
    for scope, scope_key, limit in _scopes(info, allowed):
        if not _bump(conn, scope, scope_key, limit):
            for done in taken:
                _give_back(conn, *done)
            conn.execute(delete(conversions).where(conversions.c.dedupe_key == key))
            fresh = lookup(conn, sale.code, book, stores) or info
            again = _limit_problems(conn, fresh, sale.store, stores)
            return Outcome(Status.REFUSED, fresh, tuple(again), (), key)
        taken.append((scope, scope_key))
    if not _credit_referral(conn, info, sale, key, rules):
        for done in taken:
            _give_back(conn, *done)
        conn.execute(delete(conversions).where(conversions.c.dedupe_key == key))
        fresh = lookup(conn, sale.code, book, stores) or info
        again = check(conn, fresh, sale.store, sale.at, stores, rules, referral=sale.referral)
        return Outcome(Status.REFUSED, fresh, tuple(again), (), key)
    if sale.request_id:
        conn.execute(
            redemption_requests.insert().values(
                request_id=sale.request_id,
                dedupe_key=key,
                code=sale.code,
                store=sale.store.id,
                account=sale.account,
                value_minor=sale.value_minor,
                currency=sale.currency,
                at=sale.at,
            )
        )
    return Outcome(Status.RECORDED, info, (), warnings, key)


def _credit_referral(
    conn: Connection, info: CodeInfo, sale: Sale, key: str, rules: referrals.Rules | None
) -> bool:
    """Count the friend for the referrer; False if the cap was reached meanwhile."""
    code = info.code if info.kind == "referral" else sale.referral
    if code is None or rules is None:
        return True
    found = referrals.find(conn, code)
    if found is None:
        return False
    friend = referrals.FriendVisit(key, info.code, info.reader)
    return referrals.credit(conn, found, friend, sale.store.id or None, sale.at, rules)


def _exists(conn: Connection, key: str) -> bool:
    found = conn.execute(select(conversions.c.id).where(conversions.c.dedupe_key == key)).first()
    return found is not None


def _earlier(conn: Connection, request_id: str) -> Outcome | None:
    """What a request with this id did the first time (a resent form, a retried POST)."""
    row = conn.execute(
        select(redemption_requests).where(redemption_requests.c.request_id == request_id)
    ).first()
    if row is None:
        return None
    return Outcome(Status.DUPLICATE, None, key=str(row.dedupe_key))


# --------------------------------------------------------------------------- undo


class Undo(Enum):
    DONE = "done"
    UNKNOWN = "unknown"
    TOO_LATE = "too_late"
    ALREADY = "already"
    NOT_YOURS = "not_yours"


def undo(
    conn: Connection,
    request_id: str,
    may_use: Any,
    now: datetime,
    window: timedelta = timedelta(minutes=UNDO_MINUTES),
) -> Undo:
    """Take back a till redemption within ``window``, from an account that may act for its
    store (``may_use(store) -> bool``): staff of that store or the owner."""
    row = conn.execute(
        select(redemption_requests).where(redemption_requests.c.request_id == request_id)
    ).first()
    if row is None:
        return Undo.UNKNOWN
    if row.undone_at is not None:
        return Undo.ALREADY
    if not may_use(row.store):
        return Undo.NOT_YOURS
    if now - _aware(row.at) > window:
        return Undo.TOO_LATE
    done = conn.execute(
        update(redemption_requests)
        .where(
            redemption_requests.c.request_id == request_id,
            redemption_requests.c.undone_at.is_(None),
        )
        .values(undone_at=now)
    )
    if not done.rowcount:
        return Undo.ALREADY
    conn.execute(delete(conversions).where(conversions.c.dedupe_key == row.dedupe_key))
    referrals.forget_sale(conn, str(row.dedupe_key))
    info_row = conn.execute(select(personal_codes).where(personal_codes.c.code == row.code)).first()
    _give_back(conn, "code", row.code)
    offer_story = info_row.offer_story if info_row else _shared_story(conn, row.code)
    if info_row is not None:
        _give_back(conn, "customer", f"{info_row.offer_story}:{info_row.reader}")
    if offer_story:
        _give_back(conn, "offer", offer_story)
    return Undo.DONE


def _shared_story(conn: Connection, code: str) -> str | None:
    found = conn.execute(select(offer_codes.c.story).where(offer_codes.c.code == code)).scalar()
    if found:
        return str(found)
    referral = referrals.find(conn, code)
    return referral.offer_story if referral else None
