"""The publish path: :class:`Dispatcher` (passes, preparing, sending), :class:`Outcome` and the
table from channel errors to ledger transitions (:mod:`.outcomes`), the ledger writes of each
outcome (:mod:`.record`), what a pass holds back (:mod:`.holds`) and when a resend is safe
(:mod:`.resend`)."""

from __future__ import annotations

from publisher.dispatch.dispatcher import Dispatcher, Options, Ready, utcnow, worker_name
from publisher.dispatch.outcomes import ON_ERROR, Outcome, Transition, transition_for
from publisher.dispatch.record import Sent
from publisher.dispatch.resend import SAFE_TO_RESEND, can_look_up

__all__ = [
    "ON_ERROR",
    "SAFE_TO_RESEND",
    "Dispatcher",
    "Options",
    "Outcome",
    "Ready",
    "Sent",
    "Transition",
    "can_look_up",
    "transition_for",
    "utcnow",
    "worker_name",
]
