"""Shopify's ``orders/paid`` webhook: an online sale with the click id ``storyloop.js`` put in
the cart (``attributes[sl_cid]`` becomes the order's ``note_attributes``), or failing that the
``sl_cid`` in the order's ``landing_site``.

Shopify signs the raw body: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of it with the
app's client secret. Nothing is read from a body whose signature does not match.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Connection

from publisher.tracking import conversions
from publisher.tracking.conversions import CLICK_ID_RE, InvalidConversion

log = logging.getLogger(__name__)
TOPIC = "orders/paid"
CLICK_ATTRIBUTES = ("sl_cid", "attributes[sl_cid]")


class Received(Enum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    NOT_ATTRIBUTED = "not attributed"  # the order carries no click id of ours
    IGNORED = "ignored"  # another topic


def signed(body: bytes, given: str, secret: str) -> bool:
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, given.strip().encode())


def click_id(order: Mapping[str, Any]) -> str | None:
    for attribute in order.get("note_attributes") or ():
        if isinstance(attribute, Mapping) and attribute.get("name") in CLICK_ATTRIBUTES:
            value = str(attribute.get("value") or "").strip()
            if CLICK_ID_RE.fullmatch(value):
                return value
    landing = order.get("landing_site")
    if isinstance(landing, str) and landing:
        found = parse_qs(urlsplit(landing).query).get("sl_cid", [""])[0]
        if CLICK_ID_RE.fullmatch(found):
            return found
    return None


def receive(conn: Connection, topic: str, order: Any, currency_default: str | None) -> Received:
    """Record a paid order as an online sale (once per order id)."""
    if topic != TOPIC:
        return Received.IGNORED
    if not isinstance(order, Mapping) or "id" not in order:
        raise InvalidConversion({"body": "not a Shopify order (no id)"})
    found = click_id(order)
    if found is None:
        return Received.NOT_ATTRIBUTED
    payload = {
        "click_id": found,
        "kind": "sale",
        "value": order.get("current_total_price") or order.get("total_price"),
        "currency": order.get("currency") or currency_default,
        "order_id": f"shopify:{order['id']}",
    }
    try:
        fresh = conversions.record_online(conn, payload, currency_default, source="webhook")
    except InvalidConversion as exc:
        if "click_id" in exc.errors:
            log.warning("Shopify order %s: click id %s is not ours", order["id"], found)
            return Received.NOT_ATTRIBUTED
        raise
    return Received.RECORDED if fresh else Received.DUPLICATE
