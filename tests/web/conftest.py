from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import open_shop


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Site]:
    """The shop's site on a SQLite file."""
    site = open_shop(tmp_path / "site", f"sqlite:///{tmp_path / 'site' / 'var' / 'storyloop.db'}")
    yield site
    site.engine.dispose()


@pytest.fixture
def any_shop(tmp_path: Path, db_url: str) -> Iterator[Site]:
    """The shop's site on a SQLite file, then on a real PostgreSQL database."""
    site = open_shop(tmp_path / "site", db_url)
    yield site
    site.engine.dispose()


@pytest.fixture
def serve() -> Iterator[Callable[[Site], Tracker]]:
    """Start ``storyloop serve`` for a site (killed at the end of the test)."""
    started: list[Tracker] = []

    def start(site: Site) -> Tracker:
        tracker = Tracker(site).start()
        started.append(tracker)
        return tracker

    yield start
    for tracker in started:
        tracker.kill()
