"""Guessing protection is counted in the database: failed redemptions made through one tracker
process are counted by every other on the same database (``serve --workers N``, or two machines),
so more processes do not mean more guesses. SQLite and PostgreSQL, real tracker processes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from publisher.shop.schema import guess_failures
from tests.conftest import free_port
from tests.tracking.trackkit import API_TOKEN, Response, Served, Tracker, request, serve_site

HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def two_trackers(db_url: str, tmp_path: Path) -> Iterator[tuple[Served, int]]:
    served = serve_site(tmp_path / "site", db_url)
    other = Tracker(dataclasses.replace(served.site, port=free_port())).start()
    try:
        yield served, other.site.port
    finally:
        other.kill()
        served.tracker.kill()
        served.site.engine.dispose()


def _redeem(port: int, code: str) -> Response:
    body = json.dumps({"code": code, "value": 1, "store": "xiamen-1"}).encode()
    return request(port, "POST", "/api/redemptions", HEADERS, body)


def test_failures_on_one_tracker_are_refused_on_another(two_trackers: tuple[Served, int]) -> None:
    served, other = two_trackers
    first = served.site.port
    statuses = [_redeem(first if n % 2 else other, f"CC-2222{n + 2}-Z").status for n in range(5)]
    assert statuses == [422] * 5  # five wrong codes, spread over both processes
    for port in (first, other):
        assert served.links.offer_code is not None
        refused = _redeem(port, served.links.offer_code)
        assert refused.status == 429, port
        assert 0 < int(refused.headers["retry-after"]) <= 600
    with served.site.engine.connect() as conn:
        stored = list(conn.execute(select(guess_failures.c.key)).scalars())
    assert len(stored) == 5  # five failures of the API account (the codes do not even parse)
    assert not any("CC-" in key or "account" in key for key in stored)  # keyed hashes only
