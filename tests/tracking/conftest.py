from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tracking.trackkit import Site, Tracker, open_site


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    site = open_site(tmp_path / "site", f"sqlite:///{tmp_path / 'site' / 'var' / 'storyloop.db'}")
    yield site
    site.engine.dispose()


@pytest.fixture
def any_site(tmp_path: Path, db_url: str) -> Iterator[Site]:
    """The site on a SQLite file, then on a real PostgreSQL database."""
    site = open_site(tmp_path / "site", db_url)
    yield site
    site.engine.dispose()


@pytest.fixture
def start_tracker() -> Iterator[Callable[..., Tracker]]:
    started: list[Tracker] = []

    def start(site: Site, *extra: str) -> Tracker:
        tracker = Tracker(site, *extra).start()
        started.append(tracker)
        return tracker

    yield start
    for tracker in started:
        tracker.kill()
