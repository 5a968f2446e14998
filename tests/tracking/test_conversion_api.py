"""POST /api/conversions and /api/redemptions against the real tracker process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from publisher.tracking.schema import conversions
from tests.tracking.trackkit import API_TOKEN, Response, Served, request, serve_site


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = serve_site(tmp_path_factory.mktemp("api") / "site")
    yield served
    served.tracker.kill()
    served.site.engine.dispose()


def _click_id(served: Served) -> str:
    code = next(iter(served.links.urls.values())).rsplit("/", 1)[1]
    location = request(served.site.port, "GET", f"/go/{code}").headers["location"]
    return parse_qs(urlsplit(location).query)["sl_cid"][0]


def _post(served: Served, path: str, payload: Any, token: str | None = API_TOKEN) -> Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return request(served.site.port, "POST", path, headers, body)


def _sale(click_id: str, order_id: str, **over: Any) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "kind": "sale",
        "value": 2999.5,
        "currency": "CNY",
        "order_id": order_id,
        **over,
    }


def _stored(served: Served, order_id: str) -> list[Any]:
    with served.site.engine.connect() as conn:
        query = select(conversions).where(conversions.c.order_id == order_id)
        return list(conn.execute(query).mappings())


def test_a_sale_is_attributed_to_the_delivery_of_its_click(served: Served) -> None:
    answer = _post(served, "/api/conversions", _sale(_click_id(served), "order-1"))
    assert answer.status == 201
    (row,) = _stored(served, "order-1")
    assert (row["story"], row["channel"], row["variant"]) == ("kitchen", "mastodon", "A")
    assert row["value_minor"] == 299950 and row["currency"] == "CNY"


def test_the_same_order_sent_twice_is_recorded_once(served: Served) -> None:
    payload = _sale(_click_id(served), "order-2")
    assert _post(served, "/api/conversions", payload).status == 201
    again = _post(served, "/api/conversions", payload)
    assert again.status == 200 and json.loads(again.body) == {"status": "duplicate"}
    assert len(_stored(served, "order-2")) == 1


@pytest.mark.parametrize("token", [None, "wrong", API_TOKEN + "x", ""])
def test_without_the_right_bearer_token_nothing_is_recorded(
    served: Served, token: str | None
) -> None:
    answer = _post(served, "/api/conversions", _sale(_click_id(served), "order-3"), token)
    assert answer.status == 401
    assert API_TOKEN.encode() not in answer.body
    assert _stored(served, "order-3") == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "refund"}, "kind"),
        ({"value": -5}, "value"),
        ({"value": "12.345"}, "value"),
        ({"value": "lots"}, "value"),
        ({"currency": "yuan"}, "currency"),
        ({"order_id": None}, "order_id"),
        ({"click_id": "nosuchcode1.abc1"}, "click_id"),
        ({"click_id": "not a click id"}, "click_id"),
    ],
)
def test_a_bad_payload_gets_422_naming_the_field(
    served: Served, change: dict[str, Any], field: str
) -> None:
    payload = {**_sale(_click_id(served), "order-bad"), **change}
    answer = _post(served, "/api/conversions", payload)
    assert answer.status == 422
    assert field in json.loads(answer.body)["errors"]
    assert _stored(served, "order-bad") == []


def test_a_body_that_is_not_json_gets_422(served: Served) -> None:
    answer = _post(served, "/api/conversions", b"{not json")
    assert answer.status == 422
    assert "body" in json.loads(answer.body)["errors"]


def test_a_lead_needs_no_value(served: Served) -> None:
    payload = {"click_id": _click_id(served), "kind": "lead", "order_id": "lead-1"}
    assert _post(served, "/api/conversions", payload).status == 201
    assert _stored(served, "lead-1")[0]["value_minor"] == 0


def test_a_redemption_by_offer_code_is_recorded(served: Served) -> None:
    code = served.links.offer_code
    assert code is not None
    payload = {"code": code.lower(), "value": 299, "store": "xiamen-1", "order_id": "till-1"}
    assert _post(served, "/api/redemptions", payload).status == 201
    (row,) = _stored(served, "till-1")
    assert row["kind"] == "redemption" and row["offer_code"] == code
    assert row["store"] == "xiamen-1" and row["channel"] == "mastodon"


def test_repeated_failed_redemptions_are_slowed_then_refused(served: Served) -> None:
    statuses = []
    for n in range(7):
        payload = {"code": f"CC-2222{n + 2}-Z", "value": 1, "store": "xiamen-1"}
        statuses.append(_post(served, "/api/redemptions", payload).status)
    assert statuses[:5] == [422] * 5
    assert statuses[5:] == [429, 429]
    good = {"code": served.links.offer_code, "value": 1, "store": "xiamen-1"}
    refused = _post(served, "/api/redemptions", good)
    assert refused.status == 429 and int(refused.headers["retry-after"]) > 0
