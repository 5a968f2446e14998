"""One redemption identity across paths (API, CLI, CSV import), against a real tracker on
SQLite and PostgreSQL: in-shop sales are keyed by store and receipt, online ones by order id."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from publisher.model import OfferRules
from publisher.tracking.schema import conversions
from tests.tracking.trackkit import API_TOKEN, Site, Tracker, request
from tests.web.shopkit import offer_story, shared_code, storyloop, write_manifest


def _api(site: Site, path: str, payload: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    answer = request(site.port, "POST", path, headers, json.dumps(payload).encode())
    return answer.status, json.loads(answer.body)


def _keys(site: Site) -> list[tuple[str, str | None, str]]:
    query = select(conversions.c.dedupe_key, conversions.c.store, conversions.c.currency)
    with site.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(query))  # type: ignore[misc]


def test_every_path_keys_a_sale_the_same_way(
    any_shop: Site, serve: Callable[[Site], Tracker], tmp_path: Path
) -> None:
    site = any_shop
    floor = offer_story("floor", "berlin")
    old = offer_story(
        "old", "berlin", offer_rules=OfferRules(until=datetime.now(UTC) - timedelta(1))
    )
    write_manifest(site, floor, old)
    code = shared_code(site, floor, "d1")
    expired = shared_code(site, old, "d2")
    serve(site)

    # a receipt number that equals an online order id is still its own sale
    assert (
        _api(
            site,
            "/api/redemptions",
            {"code": code, "value": "10", "store": "berlin-1", "order_id": "1001"},
        )[0]
        == 201
    )
    landing = request(site.port, "GET", f"/go/{_link(site)}")
    click = landing.headers["location"].rsplit("sl_cid=", 1)[1]
    sale = {"click_id": click, "kind": "sale", "value": 99, "currency": "EUR", "order_id": "1001"}
    assert _api(site, "/api/conversions", sale)[0] == 201
    # the same receipt by API and by CLI counts once; in the other store it is another sale
    assert (
        _api(
            site,
            "/api/redemptions",
            {"code": code, "value": "10", "store": "berlin-1", "receipt": "R-9"},
        )[0]
        == 201
    )
    cli = storyloop(
        site, "redeem", code, "--value", "10", "--store", "berlin-1", "--receipt", "R-9"
    )
    assert "already recorded" in cli.stdout, cli.stderr
    assert (
        _api(
            site,
            "/api/redemptions",
            {"code": code, "value": "10", "store": "berlin-2", "receipt": "R-9"},
        )[0]
        == 201
    )
    # a client-made request id makes a retry harmless even without a receipt
    retry = {"code": code, "value": "4", "store": "berlin-2", "request_id": "pos-7f3a9c"}
    assert _api(site, "/api/redemptions", retry) == (201, {"status": "recorded"})
    assert _api(site, "/api/redemptions", retry) == (200, {"status": "duplicate"})
    # the rules hold on every path
    status, answer = _api(
        site,
        "/api/redemptions",
        {"code": expired, "value": "1", "store": "berlin-1", "receipt": "R-10"},
    )
    assert status == 422 and "This offer ended on" in answer["errors"]["code"]

    assert _keys(site) == [
        ("order:1001", None, "EUR"),
        ("request:pos-7f3a9c", "berlin-2", "EUR"),
        ("shop:berlin-1:1001", "berlin-1", "EUR"),
        ("shop:berlin-1:R-9", "berlin-1", "EUR"),
        ("shop:berlin-2:R-9", "berlin-2", "EUR"),
    ]

    export = tmp_path / "till.csv"
    export.write_text(
        "date,code,order_id,value,currency,store\n"
        f"2026-12-01,{code},R-9,10,,berlin-1\n"
        f"2026-12-01,{code},,12,,berlin-1\n"
        f"2026-12-01,{code},,12,,berlin-1\n"
        f"2026-12-01,{code},,7,,berlin-2\n",
        encoding="utf-8",
    )
    done = storyloop(site, "import-sales", str(export))
    assert done.returncode == 0, done.stderr
    assert "2 imported, 2 already there, 0 bad row(s)" in done.stdout
    assert "3 row(s) without a receipt number (line 3, 4, 5)" in done.stdout


def _link(site: Site) -> str:
    from publisher.tracking.schema import links

    with site.engine.connect() as conn:
        return str(conn.execute(select(links.c.code).where(links.c.delivery_id == "d1")).scalar())
