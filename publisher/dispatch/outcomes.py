"""What the publish path says happened to a delivery, and what a channel's failure does to it.

Each :class:`Outcome` names one thing; the printed values are the words ``storyloop publish``
and the engine's log have always used. :data:`ON_ERROR` is the one table from a channel error's
class to the ledger transition it causes: :func:`transition_for` walks the error's classes, most
specific first, so a subclass (``RateLimited`` is a ``RetryLater``) gets its own row.
"""

from __future__ import annotations

import enum

from channels.base import (
    AuthProblem,
    ChannelError,
    ContentRejected,
    OutcomeUnknown,
    RateLimited,
    RetryLater,
)


class Outcome(enum.StrEnum):
    """The result of one delivery's turn in a pass (counted per pass)."""

    SENT = "sent"  # the receipt is stored
    RETRY_WAIT = "retry_wait"  # back in the ledger until a later attempt
    FAILED = "failed"  # rejected by the network, or out of attempts: a person looks at it
    UNKNOWN = "unknown"  # the request may have reached the network: resolved before any resend
    CANCELLED = "cancelled"  # the story left content/
    LOST = "lost"  # the ledger moved on meanwhile (another worker, a lease ran out): not ours
    STOPPING = "released"  # given back untouched because this worker is stopping
    CHANNEL_ON_HOLD = "held back"  # its channel got paused or rate-limited earlier in the pass
    WINDOW_CLOSED = "deferred"  # outside the channel's posting window: back at its opening
    NO_TOKEN = "throttled"  # the channel's own token bucket is empty: back when one is free
    NEEDS_PERSON = "held"  # no way to know whether it went out: `storyloop resolve` decides
    LOOKUP_FAILED = "unresolved"  # asking the network failed: asked again later


class Transition(enum.Enum):
    """What the ledger does with a delivery whose channel raised an error."""

    BLOCK_CHANNEL = "channel blocked until the network's time, attempt not counted"
    RETRY = "retry_wait with backoff (or the network's time), attempt counted"
    PAUSE_CHANNEL = "channel paused for a person, attempt not counted"
    FAIL = "failed, not retried"
    UNKNOWN = "unknown, resolved by lookup, key or a person before any resend"


ON_ERROR: dict[type[ChannelError], Transition] = {
    RateLimited: Transition.BLOCK_CHANNEL,
    RetryLater: Transition.RETRY,
    AuthProblem: Transition.PAUSE_CHANNEL,
    ContentRejected: Transition.FAIL,
    OutcomeUnknown: Transition.UNKNOWN,
    ChannelError: Transition.RETRY,  # an adapter's own subclass: transient until shown otherwise
}


def transition_for(exc: ChannelError) -> Transition:
    """The row of :data:`ON_ERROR` for the most specific class of ``exc``."""
    for cls in type(exc).__mro__:
        if cls in ON_ERROR:
            return ON_ERROR[cls]
    raise TypeError(f"{type(exc).__name__} is not a ChannelError")
