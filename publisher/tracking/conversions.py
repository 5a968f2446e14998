"""Conversions: online leads and sales (by click id) and in-store redemptions (by offer code).

Every conversion is attributed to the delivery its click or offer code came from, and stored once:
``dedupe_key`` is unique, so the shop resending an order, or a till export imported twice, adds
nothing. Values are kept in minor units (cents, fen) to stay exact.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from sqlalchemy import Connection, select

from publisher.db import insert_on_conflict
from publisher.errors import StoryloopError
from publisher.settings import Settings, Store
from publisher.tracking import codes
from publisher.tracking.journal import code_of
from publisher.tracking.schema import conversions, links, offer_codes

KINDS = ("lead", "sale")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # no 1_000, 1e3, ١٢٣, +5 or " 5 "
EARLIEST_SALE = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)  # a till whose clock runs a little ahead
CLICK_ID_RE = re.compile(r"[0-9A-Za-z]{6,32}\.[0-9a-f]{1,31}")
MAX_TEXT = 200
MAX_VALUE = Decimal("1000000000")


class InvalidConversion(StoryloopError):
    """A conversion or redemption failed validation; ``errors`` maps field -> what is wrong."""

    def __init__(self, errors: Mapping[str, str], where: str = "") -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        super().__init__(f"{where}{detail}")


@dataclass(frozen=True)
class Attribution:
    delivery_id: str
    story: str
    channel: str
    variant: str | None
    region: str | None

    def row(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "story": self.story,
            "channel": self.channel,
            "variant": self.variant,
            "region": self.region,
        }


def _attribution(table: Any, conn: Connection, code: str) -> Attribution | None:
    cols = (table.c.delivery_id, table.c.story, table.c.channel, table.c.variant, table.c.region)
    row = conn.execute(select(*cols).where(table.c.code == code)).first()
    return Attribution(*row) if row else None


def by_click(conn: Connection, click_id: str) -> Attribution | None:
    if not CLICK_ID_RE.fullmatch(click_id):
        return None
    return _attribution(links, conn, code_of(click_id))


def by_offer(conn: Connection, offer_code: str) -> Attribution | None:
    return _attribution(offer_codes, conn, offer_code)


NO_CURRENCY = "XXX"  # ISO 4217's "no currency": a lead has no value


def default_currency(settings: Settings) -> str | None:
    """``tracking.currency`` when the owner set one; otherwise a sale must name its currency
    or come from a store that has one (never a silent guess)."""
    configured = settings.engine.tracking.currency
    return configured.upper() if configured else None


def parse_value(raw: object) -> tuple[int | None, str | None]:
    """(minor units, None) or (None, what is wrong)."""
    if isinstance(raw, bool) or raw is None or raw == "":
        return None, "a number is required (e.g. 299 or 299.50)"
    text = str(raw).strip()
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 1e15:
        text = str(int(raw))
    if not NUMBER_RE.fullmatch(text):
        if text.startswith("-") and NUMBER_RE.fullmatch(text[1:]):
            return None, "must be a number from 0 to 1000000000"
        return None, f"{text[:40]!r} is not a number (digits, and a point for decimals)"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, f"{text[:40]!r} is not a number"
    if not value.is_finite() or value < 0 or value > MAX_VALUE:
        return None, "must be a number from 0 to 1000000000"
    if value != value.quantize(Decimal("0.01")):
        return None, "at most two decimal places"
    return int(value * 100), None


def parse_currency(raw: object, default: str | None) -> tuple[str | None, str | None]:
    if raw is None or raw == "":
        if default is None:
            return None, (
                "required: no currency given, and neither the store nor tracking.currency names one"
            )
        return default, None
    text = str(raw).strip().upper()
    if not CURRENCY_RE.fullmatch(text) or text not in iso_currencies():
        return None, f"{str(raw)[:40]!r} is not an ISO 4217 currency code (e.g. CNY, EUR)"
    return text, None


@cache
def iso_currencies() -> frozenset[str]:
    """ISO 4217 codes, from Babel's copy of the Unicode CLDR."""
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def _text(raw: object, field: str, errors: dict[str, str], *, required: bool) -> str | None:
    if raw is None or raw == "":
        if required:
            errors[field] = "required"
        return None
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        errors[field] = "must be a string"
        return None
    text = str(raw).strip()
    if len(text) > MAX_TEXT or any(ord(c) < 32 for c in text):
        errors[field] = f"must be at most {MAX_TEXT} printable characters"
        return None
    return text


def _insert(conn: Connection, row: dict[str, Any]) -> bool:
    return bool(conn.execute(insert_on_conflict(conn, conversions, values=row)).rowcount)


def record_online(
    conn: Connection, payload: object, currency_default: str | None, source: str = "api"
) -> bool:
    """Validate and store an online lead or sale; False when its order id was seen before."""
    if not isinstance(payload, Mapping):
        raise InvalidConversion({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    click_id = _text(payload.get("click_id"), "click_id", errors, required=True)
    kind = payload.get("kind")
    if kind not in KINDS:
        errors["kind"] = "must be one of: lead, sale"
    raw_value = payload.get("value")
    value, problem = (0, None) if kind == "lead" and raw_value is None else parse_value(raw_value)
    if problem:
        errors["value"] = problem
    if kind == "lead" and not payload.get("currency"):
        currency_default = currency_default or NO_CURRENCY
    currency, problem = parse_currency(payload.get("currency"), currency_default)
    if problem:
        errors["currency"] = problem
    order_id = _text(payload.get("order_id"), "order_id", errors, required=True)
    attribution = by_click(conn, click_id) if click_id else None
    if click_id and "click_id" not in errors and attribution is None:
        errors["click_id"] = "unknown click id (it is the sl_cid parameter the shop received)"
    if errors:
        raise InvalidConversion(errors)
    assert attribution and value is not None and currency and order_id
    row = {
        **attribution.row(),
        "dedupe_key": f"order:{order_id}",
        "kind": kind,
        "click_id": click_id,
        "offer_code": None,
        "value_minor": value,
        "currency": currency,
        "order_id": order_id,
        "store": None,
        "source": source,
        "at": datetime.now(UTC),
        "via": "link",
    }
    return _insert(conn, row)


@dataclass(frozen=True)
class Redemption:
    code: str
    value_minor: int
    currency: str
    store: str | None
    order_id: str | None
    at: datetime


def parse_redemption(
    payload: Mapping[str, Any], currency_default: str | None, stores: Mapping[str, Any]
) -> Redemption:
    """A redemption from a form, the API, the CLI or a CSV row; every problem is reported."""
    errors: dict[str, str] = {}
    raw_code = _text(payload.get("code"), "code", errors, required=True)
    code = codes.normalise_offer_code(raw_code) if raw_code else None
    if raw_code and code is None:
        errors["code"] = f"{raw_code!r} is not a valid offer code (e.g. CC-7KQ4W-M)"
    value, problem = parse_value(payload.get("value"))
    if problem:
        errors["value"] = problem
    store = _text(payload.get("store"), "store", errors, required=False)
    if store and stores and store not in stores:
        errors["store"] = f"unknown store {store!r} (configured: {', '.join(sorted(stores))})"
    if not store and len(stores) == 1:
        store = next(iter(stores))
    elif not store and stores and "store" not in errors:
        errors["store"] = f"required: one of {', '.join(sorted(stores))}"
    store_currency = getattr(stores.get(store or ""), "currency", None)
    currency, problem = parse_currency(payload.get("currency"), store_currency or currency_default)
    if problem:
        errors["currency"] = problem
    order_id = _text(
        payload.get("receipt") or payload.get("order_id"), "order_id", errors, required=False
    )
    at = _parse_date(payload.get("date"), errors)
    if errors:
        raise InvalidConversion(errors)
    assert code and value is not None and currency
    return Redemption(code, value, currency, store, order_id, at)


def _parse_date(raw: object, errors: dict[str, str]) -> datetime:
    if raw is None or raw == "":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
        aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        in_utc = aware.astimezone(UTC)
    except (ValueError, OverflowError):
        errors["date"] = f"{str(raw)[:40]!r} is not a date (YYYY-MM-DD or ISO 8601 date-time)"
        return datetime.now(UTC)
    if not EARLIEST_SALE <= in_utc <= datetime.now(UTC) + FUTURE_SLACK:
        errors["date"] = f"{str(raw)[:40]!r} is not a sale's date (from 2000 until today)"
    return aware


def record_redemption(conn: Connection, redemption: Redemption, source: str, key: str) -> bool:
    """Store an in-store redemption; raises when the code is unknown, False when a duplicate."""
    attribution = by_offer(conn, redemption.code)
    if attribution is None:
        raise InvalidConversion({"code": f"no offer code {redemption.code} was ever issued"})
    row = {
        **attribution.row(),
        "dedupe_key": key,
        "kind": "redemption",
        "click_id": None,
        "offer_code": redemption.code,
        "value_minor": redemption.value_minor,
        "currency": redemption.currency,
        "order_id": redemption.order_id,
        "store": redemption.store,
        "source": source,
        "at": redemption.at,
    }
    return _insert(conn, row)


def stores(settings: Settings) -> Mapping[str, Store]:
    return settings.stores
