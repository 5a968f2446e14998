"""Building blocks for the consent tests: a testimonial as the form keeps it, and its slug."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from publisher.customers import records
from publisher.customers.invites import Invitation
from publisher.customers.pull import slug_for
from publisher.customers.records import Received


def received(
    engine: Engine,
    var_dir: Path,
    *,
    invite: str = "9b987b43e1c24f0aa3c1d2e3f4a5b6c7",
    scope: str = "site, social, newsletter",
    until: date | None = None,
    name: str = "Lena & Tom",
    photos: tuple[bytes, ...] = (),
) -> Received:
    """A testimonial sent through the form (store berlin-1), as the database keeps it."""
    invitation = Invitation(invite, "berlin-1", date(2026, 11, 28))
    answer = records.Answer(
        "de", "Der Boden ist wunderschön geworden.", 5, name, scope, until, "Ich stimme zu."
    )
    assert records.save(engine, var_dir, invitation, answer, list(photos), datetime.now(UTC))
    return next(r for r in records.all_received(engine) if r.invite == invite)


def slug(item: Received) -> str:
    return slug_for(item)
