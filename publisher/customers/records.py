"""Answers from the testimonial form: kept once per invitation, listed, marked as pulled."""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.customers.invites import Invitation
from publisher.customers.schema import testimonials

SCOPES = ("site", "site, social, newsletter")
CONSENT_VERSION = "2026-12-01"


@dataclass(frozen=True)
class Answer:
    lang: str
    text: str
    rating: int
    display_name: str
    scope: str
    until: date | None
    consent_text: str


@dataclass(frozen=True)
class Received:
    invite: str
    store: str
    visited_on: date
    lang: str
    text: str
    rating: int
    display_name: str
    photos: tuple[str, ...]
    consent_scope: str
    consent_until: date | None
    consent_version: str
    consent_text: str
    submitted_at: datetime
    pulled_at: datetime | None
    pulled_branch: str | None


def photo_root(var_dir: Path) -> Path:
    return var_dir / "testimonials"


def used(conn: Connection, invitation: Invitation) -> bool:
    found = conn.execute(
        select(testimonials.c.invite).where(testimonials.c.invite == invitation.id)
    ).first()
    return found is not None


def save(
    engine: Engine,
    var_dir: Path,
    invitation: Invitation,
    answer: Answer,
    photos: list[bytes],
    now: datetime,
) -> bool:
    """Keep the answer; False when this invitation was used already (nothing is kept then)."""
    folder_name = f"{invitation.id}-{secrets.token_hex(4)}"
    folder = photo_root(var_dir) / folder_name
    names: list[str] = []
    if photos:
        folder.mkdir(parents=True)
        for number, data in enumerate(photos, 1):
            (folder / f"{number}.jpg").write_bytes(data)
            names.append(f"{folder_name}/{number}.jpg")
    row = {
        "invite": invitation.id,
        "store": invitation.store,
        "visited_on": invitation.visited,
        "lang": answer.lang,
        "text": answer.text,
        "rating": answer.rating,
        "display_name": answer.display_name,
        "photos": json.dumps(names),
        "consent_scope": answer.scope,
        "consent_until": answer.until,
        "consent_version": CONSENT_VERSION,
        "consent_text": answer.consent_text,
        "submitted_at": now,
    }
    try:
        with engine.begin() as conn:
            conn.execute(insert(testimonials).values(**row))
    except IntegrityError:
        shutil.rmtree(folder, ignore_errors=True)
        return False
    return True


def _received(row: object) -> Received:
    m = row._mapping  # type: ignore[attr-defined]
    return Received(
        invite=m["invite"],
        store=m["store"],
        visited_on=m["visited_on"],
        lang=m["lang"],
        text=m["text"],
        rating=m["rating"],
        display_name=m["display_name"],
        photos=tuple(json.loads(m["photos"])),
        consent_scope=m["consent_scope"],
        consent_until=m["consent_until"],
        consent_version=m["consent_version"],
        consent_text=m["consent_text"],
        submitted_at=m["submitted_at"],
        pulled_at=m["pulled_at"],
        pulled_branch=m["pulled_branch"],
    )


def all_received(engine: Engine) -> list[Received]:
    with engine.connect() as conn:
        rows = conn.execute(select(testimonials).order_by(testimonials.c.submitted_at)).all()
    return [_received(r) for r in rows]


def mark_pulled(engine: Engine, invite: str, branch: str, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(testimonials)
            .where(testimonials.c.invite == invite)
            .values(pulled_at=now, pulled_branch=branch)
        )
