from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from publisher import settings as settings_mod
from tests.dashboard import seed
from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import add_user, open_shop


@dataclass
class Seeded:
    site: Site
    history: seed.History
    offer_codes: dict[str, str]


def seeded_site(root: Path, db_url: str) -> Seeded:
    """The shop's site in the seed's time zone, with an owner and a staff account and the
    seeded history stored."""
    site = open_shop(root, db_url)
    config = site.settings.source
    config.write_text(
        config.read_text(encoding="utf-8") + f'\nTIMEZONE = "{seed.ZONE}"\nDEFAULT_LANG = "en"\n',
        encoding="utf-8",
    )
    site.settings = settings_mod.load(config)
    history = seed.history()
    codes = seed.write(site.engine, site.settings, history)
    return Seeded(site, history, codes)


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    found = seeded_site(tmp_path / "site", f"sqlite:///{tmp_path / 'site' / 'var' / 'sl.db'}")
    yield found
    found.site.engine.dispose()


@pytest.fixture
def any_seeded(tmp_path: Path, db_url: str) -> Iterator[Seeded]:
    found = seeded_site(tmp_path / "site", db_url)
    yield found
    found.site.engine.dispose()


def _serve(seeded: Seeded) -> Iterator[Seeded]:
    add_user(seeded.site, "owner", "owner")
    add_user(seeded.site, "till", "staff", "xiamen-1")
    tracker = Tracker(seeded.site).start()
    yield seeded
    tracker.kill()


@pytest.fixture
def served(seeded: Seeded) -> Iterator[Seeded]:
    """The seeded site behind a real ``storyloop serve``, with an owner and a staff account
    (for a test that changes the ledger)."""
    yield from _serve(seeded)


@pytest.fixture(scope="module")
def served_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The same, shared by the tests of a module that only read."""
    root = tmp_path_factory.mktemp("dashboard") / "site"
    found = seeded_site(root, f"sqlite:///{root / 'var' / 'sl.db'}")
    yield from _serve(found)
    found.site.engine.dispose()
