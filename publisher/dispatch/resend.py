"""Whether a delivery may go out again after an attempt whose outcome is not known.

A delivery whose earlier attempt failed may have posted all the same (a 5xx after the network
made the post), so it is looked up first where the channel can; an idempotency key is trusted
only as long as the network keeps it, counted from the planned time, which is never later than
the first attempt.
"""

from __future__ import annotations

from datetime import datetime

from channels.base import Channel, Idempotency
from publisher.ledger import Claim

SAFE_TO_RESEND = (Idempotency.KEY, Idempotency.RECORD_KEY, Idempotency.LOOKUP)


def can_look_up(adapter: Channel) -> bool:
    """LOOKUP and RECORD_KEY channels find an earlier post by declaration; a KEY channel can
    when it implements ``lookup`` (Mastodon searches its own recent statuses)."""
    if adapter.idempotency in (Idempotency.LOOKUP, Idempotency.RECORD_KEY):
        return True
    return adapter.idempotency is Idempotency.KEY and type(adapter).lookup is not Channel.lookup


def crash_safe(adapter: Channel) -> bool:
    """Whether a crash mid-send is settled without a person (by key or lookup, or by choice):
    such deliveries are prepared in batches and their receipts stored together."""
    return adapter.idempotency in SAFE_TO_RESEND or adapter.resend_on_unknown


def key_expired(claim: Claim, adapter: Channel, now: datetime) -> bool:
    """Whether the network may have forgotten the key: measured from the planned time, which
    is never later than the first attempt, so a key is never trusted too long."""
    lifetime = adapter.key_lifetime
    return lifetime is not None and now - claim.due_at >= lifetime


def may_resend(claim: Claim, adapter: Channel, now: datetime) -> bool:
    """After a lookup found nothing (or none was possible): may the post go out again?"""
    if adapter.resend_on_unknown or can_look_up(adapter):
        return True
    if adapter.idempotency in (Idempotency.KEY, Idempotency.RECORD_KEY):
        return not key_expired(claim, adapter, now)
    return False
