"""Online sales: storyloop.js in a real Chromium on a shop's pages, and Shopify's orders/paid
webhook against a real ``storyloop serve`` (payloads shaped like Shopify's, HMAC-signed)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from sqlalchemy import select

from publisher.tracking.schema import conversions
from publisher.web.shop_api import SCRIPT
from tests.tracking.trackkit import Site, Tracker, make_story, request
from tests.web.shopkit import open_shop

SECRET = "shpss_test_webhook_secret"
CLICK = "Ab3dE5gH7j.1a2b3c4d5e6f7"
SCRIPT_TAG = "<script src='/storyloop.js'></script>"


def test_storyloop_js_is_small_and_needs_nothing_else() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    assert len(SCRIPT.read_bytes()) < 3 * 1024
    code = text.split("*/", 1)[1]  # after the header comment
    for loads_something in ("import ", "require(", "://", "fetch(", "XMLHttpRequest"):
        assert loads_something not in code


SHOP_PAGES = {
    "landing.html": "<h1>Sofa</h1><a id='next' href='/product.html'>Product</a>",
    "product.html": (
        "<form id='cart' method='post' action='/cart/add'><button>Add</button></form>"
        "<a id='checkout' href='/checkout'>Checkout</a>"
        "<a id='elsewhere' href='https://maps.example/x'>Map</a>"
        "<script>setTimeout(function(){var f=document.createElement('form');"
        "f.id='late';f.action='/cart';document.body.appendChild(f)},50)</script>"
    ),
}


class ShopHandler(SimpleHTTPRequestHandler):
    posted: ClassVar[list[bytes]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length", "0"))
        ShopHandler.posted.append(self.rfile.read(size))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def shop_site(tmp_path: Path) -> Iterator[str]:
    """A shop's own website on another port, embedding storyloop.js."""
    for name, body in SHOP_PAGES.items():
        page = f"<!doctype html><meta charset=utf-8><link rel=icon href='data:,'>{SCRIPT_TAG}{body}"
        (tmp_path / name).write_text(page, encoding="utf-8")
    (tmp_path / "storyloop.js").write_bytes(SCRIPT.read_bytes())
    handler = functools.partial(ShopHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_storyloop_js_carries_the_click_id_from_the_landing_page_to_the_cart(
    playwright: Any, chromium_path: str, shop_site: str
) -> None:
    chromium = playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    errors: list[str] = []

    def on_console(m: Any) -> None:
        if m.type == "error":
            errors.append(m.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{shop_site}/landing.html?utm_source=mastodon&sl_cid={CLICK}")
        page.click("#next")  # the product page has no sl_cid in its address
        page.wait_for_selector("#late input", state="attached")
        field = "input[name='attributes[sl_cid]']"
        assert page.locator(f"#cart {field}").get_attribute("value") == CLICK
        assert page.locator(f"#late {field}").get_attribute("value") == CLICK
        assert page.evaluate("document.getElementById('checkout').href").endswith(
            "/checkout?attributes%5Bsl_cid%5D=" + CLICK
        )
        assert page.evaluate("document.getElementById('elsewhere').href") == (
            "https://maps.example/x"
        )
        page.click("#cart button")
        page.wait_for_timeout(200)
        assert ShopHandler.posted[-1] == b"attributes%5Bsl_cid%5D=" + CLICK.encode()
        assert errors == []
    finally:
        chromium.close()


# --------------------------------------------------------------------------- Shopify


@pytest.fixture
def tracker_site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    site = open_shop(root, f"sqlite:///{root / 'var' / 'db.sqlite'}")
    text = site.settings.source.read_text(encoding="utf-8")
    text += 'STORYLOOP["tracking"]["shopify_secret"] = {"env": "TEST_SHOPIFY_SECRET"}\n'
    site.settings.source.write_text(text, encoding="utf-8")
    yield site
    site.engine.dispose()


def _order(click_id: str | None, order_id: int = 5001762353258) -> dict[str, Any]:
    """An orders/paid payload, trimmed from Shopify's documented example."""
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": "#1001",
        "order_number": 1001,
        "email": "jonas@example.de",
        "created_at": "2026-12-01T10:12:51+01:00",
        "processed_at": "2026-12-01T10:12:50+01:00",
        "currency": "EUR",
        "presentment_currency": "EUR",
        "current_total_price": "45.50",
        "total_price": "45.50",
        "subtotal_price": "45.50",
        "financial_status": "paid",
        "landing_site": "/products/oak-sample-board?utm_source=mastodon",
        "referring_site": "https://mastodon.example/",
        "source_name": "web",
        "note_attributes": [{"name": "sl_cid", "value": click_id}] if click_id else [],
        "line_items": [
            {"id": 13667445407850, "title": "Oak sample board", "quantity": 1, "price": "45.50"}
        ],
    }


def _post(
    site: Site,
    body: bytes,
    secret: str = SECRET,
    topic: str = "orders/paid",
    signed_body: bytes | None = None,
) -> Any:
    signed = body if signed_body is None else signed_body
    signature = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Shop-Domain": "cedar-and-clay.myshopify.com",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }
    return request(site.port, "POST", "/webhooks/shopify", headers, body)


def _sales(site: Site) -> list[Any]:
    with site.engine.connect() as conn:
        return list(conn.execute(select(conversions)).mappings())


def test_a_paid_shopify_order_is_an_online_sale_of_the_click_s_delivery(
    tracker_site: Site, monkeypatch: pytest.MonkeyPatch, serve: Callable[[Site], Tracker]
) -> None:
    from publisher.tracking import prepare_links

    monkeypatch.setenv("TEST_SHOPIFY_SECRET", SECRET)
    with tracker_site.engine.begin() as conn:
        links = prepare_links(
            conn,
            tracker_site.settings,
            delivery_id="d1",
            story=make_story(region="berlin"),
            channel="mastodon",
            variant="A",
        )
    serve(tracker_site)
    code = next(iter(links.urls.values())).rsplit("/", 1)[1]
    landing = requests.get(
        f"http://127.0.0.1:{tracker_site.port}/go/{code}", allow_redirects=False, timeout=10
    )
    click_id = landing.headers["location"].rsplit("sl_cid=", 1)[1]
    body = json.dumps(_order(click_id)).encode()

    assert _post(tracker_site, body, secret="not the secret").status == 401
    changed = body.replace(b'"45.50"', b'"4550.00"')
    assert _post(tracker_site, changed, signed_body=body).status == 401
    assert _sales(tracker_site) == []

    answer = _post(tracker_site, body)
    assert answer.status == 200 and json.loads(answer.body) == {"status": "recorded"}
    again = _post(tracker_site, body)  # Shopify retries: counted once
    assert json.loads(again.body) == {"status": "duplicate"}
    (sale,) = _sales(tracker_site)
    assert (sale["kind"], sale["channel"], sale["variant"], sale["source"]) == (
        "sale",
        "mastodon",
        "A",
        "webhook",
    )
    assert (sale["value_minor"], sale["currency"], sale["via"]) == (4550, "EUR", "link")
    assert sale["dedupe_key"] == "order:shopify:5001762353258"

    unattributed = _post(tracker_site, json.dumps(_order(None, 77)).encode())
    assert json.loads(unattributed.body) == {"status": "not attributed"}
    other = _post(tracker_site, body, topic="orders/create")
    assert json.loads(other.body) == {"status": "ignored"}
    assert len(_sales(tracker_site)) == 1


def test_without_a_configured_secret_the_webhook_accepts_nothing(
    tracker_site: Site, monkeypatch: pytest.MonkeyPatch, serve: Callable[[Site], Tracker]
) -> None:
    monkeypatch.delenv("TEST_SHOPIFY_SECRET", raising=False)
    serve(tracker_site)
    assert _post(tracker_site, json.dumps(_order(CLICK)).encode()).status == 401
    assert _sales(tracker_site) == []
