"""Redemptions that arrive as data (the JSON API, ``storyloop redeem``, a till's CSV export):
validated like before, then checked and recorded by :func:`publisher.shop.redeem.redeem`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from publisher.shop.context import Shop, store_for
from publisher.shop.redeem import Outcome, Sale, Status, redeem
from publisher.tracking import conversions
from publisher.tracking.conversions import InvalidConversion


def record(
    conn: Connection,
    shop: Shop,
    payload: Mapping[str, Any],
    raw_stores: Mapping[str, Any],
    currency_default: str | None,
    *,
    source: str,
    account: str,
    row_key: str | None = None,
) -> Outcome:
    """Record one redemption or raise :class:`InvalidConversion` naming the field and why."""
    parsed = conversions.parse_redemption(payload, currency_default, raw_stores)
    store = store_for(shop, parsed.store)
    if store is None:
        raise InvalidConversion({"store": f"required: one of {', '.join(sorted(shop.stores))}"})
    request_id = payload.get("request_id")
    sale = Sale(
        code=parsed.code,
        store=store,
        value_minor=parsed.value_minor,
        currency=parsed.currency,
        receipt=parsed.order_id,
        source=source,
        account=account,
        at=parsed.at,
        request_id=str(request_id)[:64] if request_id else None,
        row_key=row_key,
    )
    outcome = redeem(conn, sale, shop.book, shop.stores, shop.allowed, shop.referral_rules)
    if outcome.status is Status.UNKNOWN_CODE:
        raise InvalidConversion({"code": f"no offer code {parsed.code} was ever issued"})
    if outcome.status is Status.REFUSED:
        reasons = " ".join(p.sentence() for p in outcome.problems)
        raise InvalidConversion({"code": f"refused: {reasons}"})
    return outcome
