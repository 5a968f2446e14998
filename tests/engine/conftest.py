"""Fixtures for the engine: a migrated ledger on a real database, a clock, scripted channels."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from publisher import db
from publisher.settings import Settings
from tests.engine.enginekit import Clock, write_settings


@pytest.fixture
def ledger_db(db_url: str) -> Iterator[Engine]:
    engine = db.connect(db_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_site(tmp_path: Path, db_url: str) -> Callable[..., Settings]:
    def make(**kw: Any) -> Settings:
        return write_settings(tmp_path / "site", db_url=db_url, **kw)

    return make
