"""The build's side of a withdrawal: the testimonial's page is not built again.

A withdrawal is recorded in the database at once (the customer's link, or ``storyloop consent
withdraw``), but the testimonial's Markdown stays in git until an editor deletes it. So the
Pelican plugin asks the database, when it can reach it, which testimonials were withdrawn, and
reports each as a ``consent`` warning: like a testimonial without consent it is then left out of
the site and the manifest, and ``storyloop check`` tells the editor to delete the file and its
photos. A build machine without the database (a CI runner) builds what git holds: that is why
the file must still be deleted in git.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from publisher.content import Header, Problem
from publisher.settings import EngineSettings
from publisher.settings import database_url as settings_database_url


def database_url(engine: EngineSettings, root: Path) -> str:
    """The engine's database as :attr:`publisher.settings.Settings.database_url` finds it."""
    return settings_database_url(engine, root)


def _withdrawn(url: str, slugs: list[str]) -> dict[str, tuple[str, str]]:
    if not url or not slugs:
        return {}
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        return {}  # no engine database here: nothing was withdrawn through it
    # only now: SQLAlchemy took a third of a second of every build that has no database to ask
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from publisher import db
    from publisher.consent.schema import WITHDRAWN, consent_ends

    engine = db.connect(url)
    e = consent_ends.c
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(e.story, e.ended_at, e.how).where(e.reason == WITHDRAWN, e.story.in_(slugs))
            ).all()
    except SQLAlchemyError:  # a database from before consent was recorded, or unreachable
        return {}
    finally:
        engine.dispose()
    return {row.story: (f"{row.ended_at:%Y-%m-%d}", row.how) for row in rows}


def withdrawn(headers: Iterable[Header], engine: EngineSettings, root: Path) -> list[Problem]:
    """A ``consent`` warning for each post whose consent the customer withdrew."""
    by_slug = {h.get("slug"): h for h in headers if h.get("slug")}
    found = _withdrawn(database_url(engine, root), [str(s) for s in by_slug])
    return [
        Problem(
            header.path,
            header.line("consent"),
            "consent",
            f"the customer withdrew consent on {day} ({how}): not built and not posted",
            "delete this file and its photos in git; storyloop consent lists its copies",
            "warning",
        )
        for slug, header in by_slug.items()
        if slug in found
        for day, how in [found[str(slug)]]
    ]
