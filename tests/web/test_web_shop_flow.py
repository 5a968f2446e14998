"""The step into the shop, in a real Chromium at a phone's and a desktop's size, on SQLite and
on PostgreSQL: a reader follows a tracked Mastodon link, opens the story, gets a personal code;
a shop assistant logs in at /till and redeems it with an amount in euro written with a decimal
comma; the sale is credited to mastodon and to that store.

Screenshots land in /tmp/storyloop-shots/shop-<viewport>-<step>.png.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from publisher.manifest import load_manifest
from publisher.tracking import prepare_links
from publisher.tracking.schema import conversions
from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import PASSWORD, PHONE, add_user, build_sample_site, open_shop, storyloop

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/storyloop-shots")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
VIEWPORTS = {"phone": (390, 844), "desktop": (1366, 900)}
STORY = "berlin-altbau-floor"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


@dataclass
class Flow:
    site: Site
    mastodon_link: str  # the tracked link in the Mastodon post


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def flow(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flow]:
    root = tmp_path_factory.mktemp("flow") / "site"
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'var' / 'storyloop.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    site = open_shop(root, url)
    build_sample_site(site)
    add_user(site, "mia", "staff", "berlin-1")
    story = load_manifest(site.settings.manifest_path).by_slug()[STORY]
    with site.engine.begin() as conn:
        links = prepare_links(
            conn, site.settings, delivery_id="post-1", story=story, channel="mastodon", variant="B"
        )
    tracker = Tracker(site).start()
    try:
        yield Flow(site, links.urls[story.url])
    finally:
        tracker.kill()
        site.engine.dispose()


@pytest.fixture(scope="module")
def browser(playwright: Any, chromium_path: str) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=chromium_path, args=ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@dataclass
class Tab:
    page: Any
    viewport: str
    errors: list[str] = field(default_factory=list)

    def shot(self, step: str) -> None:
        SHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"shop-{self.viewport}-{step}.png"), full_page=True)
        width = self.page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= self.page.evaluate("window.innerWidth"), f"{step} scrolls sideways"


def open_tab(browser: Any, viewport: str, **context: Any) -> Tab:
    width, height = VIEWPORTS[viewport]
    agent = PHONE if viewport == "phone" else DESKTOP
    page = browser.new_context(
        viewport={"width": width, "height": height}, user_agent=agent, **context
    ).new_page()
    tab = Tab(page, viewport)

    def on_console(m: Any) -> None:
        if m.type == "error":
            tab.errors.append(f"console: {m.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: tab.errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: tab.errors.append(f"failed: {r.url}"))

    def on_response(r: Any) -> None:
        if r.status >= 400:
            tab.errors.append(f"{r.status}: {r.url}")

    page.on("response", on_response)
    return tab


def _conversion(site: Site, code: str) -> dict[str, Any]:
    with site.engine.connect() as conn:
        query = select(conversions).where(conversions.c.offer_code == code)
        (row,) = conn.execute(query).mappings()
        return dict(row)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_mastodon_reader_s_personal_code_is_redeemed_at_the_berlin_till(
    flow: Flow, browser: Any, viewport: str
) -> None:
    reader = open_tab(browser, viewport)
    page = reader.page
    page.goto(flow.mastodon_link)
    assert urlsplit(page.url).path == f"/stories/{STORY}.html"
    assert "sl_cid" in parse_qs(urlsplit(page.url).query)
    claim = page.locator("a.offer-claim")
    claim.scroll_into_view_if_needed()
    reader.shot("1-story")
    claim.click()
    page.wait_for_url("**/offer/*")
    reader.shot("2-offer")
    page.get_by_role("button", name="Get my code").click()
    page.wait_for_url("**/code/*")
    code = page.locator("#code").inner_text().strip()
    assert page.locator("img.qr").evaluate("img => img.naturalWidth") > 0
    reader.shot("3-code")
    assert reader.errors == []

    staff = open_tab(browser, viewport)
    till = staff.page
    till.goto(f"http://127.0.0.1:{flow.site.port}/till")
    assert urlsplit(till.url).path == "/login"
    till.get_by_label("Name").fill("mia")
    till.get_by_label("Password").fill(PASSWORD)
    till.get_by_role("button", name="Log in").click()
    till.wait_for_url("**/till")
    till.get_by_label("Code", exact=True).fill(code.lower().replace("-", " "))
    staff.shot("4-till")
    till.get_by_role("button", name="Code prüfen").click()
    assert till.get_by_text("Gültig hier und jetzt").is_visible()
    receipt = f"R-{viewport}"
    till.get_by_label("Bezahlter Betrag").fill("45,50")
    till.get_by_label("Belegnummer").fill(receipt)
    staff.shot("5-check")
    till.get_by_role("button", name="Bestätigen").click()
    assert till.get_by_text("Erfasst: 45,50 €").is_visible()
    assert till.get_by_text("free sample board").is_visible()  # what to hand over
    staff.shot("6-done")
    till.get_by_role("link", name="Nächster Kunde").click()
    till.get_by_label("Code", exact=True).fill(code)
    till.get_by_role("button", name="Code prüfen").click()
    assert till.get_by_text("Nicht angenommen").is_visible()  # single use: now refused
    assert till.get_by_role("button", name="Bestätigen").count() == 0
    staff.shot("7-used")
    assert staff.errors == []
    reader.page.context.close()
    staff.page.context.close()

    row = _conversion(flow.site, code)
    assert (row["channel"], row["variant"], row["delivery_id"]) == ("mastodon", "B", "post-1")
    assert (row["store"], row["value_minor"], row["currency"]) == ("berlin-1", 4550, "EUR")
    assert (row["via"], row["code_kind"], row["order_id"]) == ("link", "personal", receipt)
    assert row["click_id"] and row["click_id"].startswith(flow.mastodon_link.rsplit("/", 1)[1])

    # The report credits mastodon and the Berlin store, as a sale that came through the link
    done = storyloop(flow.site, "report", "--by", "channel,store", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    (berlin,) = [r for r in rows if (r["channel"], r["store"]) == ("mastodon", "berlin-1")]
    assert berlin["redemptions_linked"] >= 1 and berlin["redemptions_code_only"] == 0
    assert "EUR" in berlin["revenue"]


def test_the_story_page_qr_code_is_a_tracked_link_of_the_site_channel(flow: Flow) -> None:
    answer = requests.get(
        f"http://127.0.0.1:{flow.site.port}/qr/{STORY}",
        allow_redirects=False,
        headers={"User-Agent": PHONE},
        timeout=10,
    )
    assert answer.status_code == 302
    target = urlsplit(answer.headers["location"])
    query = parse_qs(target.query)
    assert target.path == f"/stories/{STORY}.html"
    assert (query["utm_source"], query["utm_medium"]) == (["site"], ["qr"])
    assert "sl_cid" in query and "sl_cid=" in answer.headers["set-cookie"]
    missing = requests.get(f"http://127.0.0.1:{flow.site.port}/qr/no-such-story", timeout=10)
    assert missing.status_code == 404


def test_without_a_tracked_click_the_code_is_credited_to_the_site(flow: Flow) -> None:
    http = requests.Session()
    base = f"http://127.0.0.1:{flow.site.port}"
    page = http.get(f"{base}/offer/{STORY}", timeout=10)
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    claimed = http.post(f"{base}/offer/{STORY}", data={"csrf": token}, allow_redirects=False)
    code = claimed.headers["location"].rsplit("/", 1)[1]
    again = http.post(f"{base}/offer/{STORY}", data={"csrf": token}, allow_redirects=False)
    assert again.headers["location"].endswith(code)  # the same reader keeps one code
    cookie = claimed.headers["set-cookie"].lower()
    assert "sl_reader=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    from publisher.shop.schema import personal_codes

    with flow.site.engine.connect() as conn:
        row = conn.execute(select(personal_codes).where(personal_codes.c.code == code)).one()
    assert (row.channel, row.via, row.click_id, row.delivery_id) == (
        "site",
        "site",
        None,
        f"site-{STORY}",
    )
