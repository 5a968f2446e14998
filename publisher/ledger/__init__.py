"""The ledger: one row per delivery (story × channel × variant), the source of truth.

- :mod:`publisher.ledger.schema`: the tables, the states, :class:`Claim`, :func:`delivery_id`;
- :mod:`publisher.ledger.transitions`: every write (claims, outcomes, by hand, channels, the
  plan's writes), each one conditional UPDATE whose event is written only if it won; the only
  code that writes ``deliveries`` and ``delivery_events``;
- :mod:`publisher.ledger.queries`: reads, as typed :class:`Delivery` values.

``from publisher.ledger import X`` (and ``ledger.X``) names all of them, as before the split.

States::

    planned ──claim──> claimed ──in flight──> sending ──receipt──> sent
       ^                  │                  │
       │  lease expired,  │                  ├── RetryLater / RateLimited ──> retry_wait ──> (claim)
       └── released ──────┘                  ├── ContentRejected / attempts used up ──> failed
                                             └── OutcomeUnknown / lease expired ──> unknown
    unknown ──resolve (lookup, idempotency key, or a person)──> sent | retry_wait | unknown (held)
    planned / retry_wait ──> cancelled (story removed, or by hand) | missed (past the grace period)
"""

from __future__ import annotations

from publisher.ledger.queries import (
    Delivery,
    any_due,
    counts_by_state,
    due_now,
    events,
    every,
    get,
    needing_attention,
    next_wakeups,
    paused_channels,
    sent_with_remote_id,
    upcoming,
)
from publisher.ledger.schema import (
    BY_PLAN,
    BY_USER,
    CANCELLED,
    CLAIMED,
    FAILED,
    IN_HAND,
    MISSED,
    PENDING,
    PLANNED,
    RESOLVING,
    RETRY_WAIT,
    SENDING,
    SENT,
    STATES,
    UNKNOWN,
    Claim,
    UTCDateTime,
    channel_state,
    d,
    deliveries,
    delivery_events,
    delivery_id,
    sqlite_text,
)
from publisher.ledger.transitions import (
    ANALYZE_AFTER,
    LET_GO,
    block_channel,
    cancel,
    claim_due,
    claim_unknown,
    extend_leases,
    mark_failed,
    mark_missed,
    mark_retry,
    mark_sending,
    mark_sending_many,
    mark_sent_many,
    mark_unknown,
    pause_channel,
    prepare_plan,
    recover_expired,
    refresh_statistics,
    release,
    resolve_resend,
    resolve_sent,
    resume_channel,
    retry,
    take_token,
    transaction,
)

__all__ = [
    "ANALYZE_AFTER",
    "BY_PLAN",
    "BY_USER",
    "CANCELLED",
    "CLAIMED",
    "FAILED",
    "IN_HAND",
    "LET_GO",
    "MISSED",
    "PENDING",
    "PLANNED",
    "RESOLVING",
    "RETRY_WAIT",
    "SENDING",
    "SENT",
    "STATES",
    "UNKNOWN",
    "Claim",
    "Delivery",
    "UTCDateTime",
    "any_due",
    "block_channel",
    "cancel",
    "channel_state",
    "claim_due",
    "claim_unknown",
    "counts_by_state",
    "d",
    "deliveries",
    "delivery_events",
    "delivery_id",
    "due_now",
    "events",
    "every",
    "extend_leases",
    "get",
    "mark_failed",
    "mark_missed",
    "mark_retry",
    "mark_sending",
    "mark_sending_many",
    "mark_sent_many",
    "mark_unknown",
    "needing_attention",
    "next_wakeups",
    "pause_channel",
    "paused_channels",
    "prepare_plan",
    "recover_expired",
    "refresh_statistics",
    "release",
    "resolve_resend",
    "resolve_sent",
    "resume_channel",
    "retry",
    "sent_with_remote_id",
    "sqlite_text",
    "take_token",
    "transaction",
    "upcoming",
]
