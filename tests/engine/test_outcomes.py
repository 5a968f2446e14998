"""One table from a channel's error to its ledger transition; outcomes that say one thing each."""

from __future__ import annotations

from channels.base import (
    AuthProblem,
    ChannelError,
    ContentRejected,
    OutcomeUnknown,
    RateLimited,
    RetryLater,
)
from publisher.dispatch import ON_ERROR, Outcome, Transition, transition_for


class TooLong(ContentRejected):
    """An adapter's own, more precise error."""


def test_each_error_class_has_its_transition_and_subclasses_follow_their_parent() -> None:
    assert {cls: transition_for(cls("x")) for cls in ON_ERROR} == ON_ERROR
    assert transition_for(RateLimited("slow down")) is Transition.BLOCK_CHANNEL
    assert transition_for(RetryLater("503")) is Transition.RETRY
    assert transition_for(AuthProblem("401")) is Transition.PAUSE_CHANNEL
    assert transition_for(OutcomeUnknown("timeout")) is Transition.UNKNOWN
    assert transition_for(TooLong("too long")) is Transition.FAIL
    assert transition_for(ChannelError("odd")) is Transition.RETRY


def test_outcomes_have_one_word_each() -> None:
    words = [o.value for o in Outcome]
    assert len(set(words)) == len(words)
    # a StrEnum member equals its word, which mypy's strict equality does not model
    assert Outcome.NEEDS_PERSON == "held" and Outcome.CHANNEL_ON_HOLD == "held back"  # type: ignore[comparison-overlap]
