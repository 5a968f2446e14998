from __future__ import annotations

from typing import Any

import pytest
import responses

from publisher.tracking import report
from publisher.tracking.metrics import refresh_metrics
from tests.tracking.trackkit import Site, add_delivery

STATUS: dict[str, Any] = {
    "id": "113123456789012345",
    "created_at": "2026-03-01T01:00:00.000Z",
    "url": "https://mastodon.example/@cedarandclay/113123456789012345",
    "content": "<p>A kitchen in Xiamen</p>",
    "visibility": "public",
    "replies_count": 3,
    "reblogs_count": 7,
    "favourites_count": 21,
}


@responses.activate
def test_metrics_from_the_network_appear_in_the_report(
    sqlite_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", "token-for-tests")
    add_delivery(sqlite_site, "d1", "mastodon", "A", remote_id=STATUS["id"])
    add_delivery(sqlite_site, "d2", "mastodon", "B", remote_id="404404")
    responses.get(f"https://mastodon.example/api/v1/statuses/{STATUS['id']}", json=STATUS)
    responses.get(
        "https://mastodon.example/api/v1/statuses/404404",
        json={"error": "Record not found"},
        status=404,
    )
    assert refresh_metrics(sqlite_site.engine, sqlite_site.settings) == (1, 1)
    data = report.as_json(report.build(sqlite_site.engine, ("variant",)))
    (a,) = [r for r in data["rows"] if r["variant"] == "A"]
    assert a["engagement"] == {"likes": 21, "reposts": 7, "replies": 3, "views": None}
    (b,) = [r for r in data["rows"] if r["variant"] == "B"]
    assert b["engagement"] is None
