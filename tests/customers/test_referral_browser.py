"""The till's referral screens in a real Chromium at a phone's size (and the desktop's): the
confirmation hands the customer a referral code whose QR (read back with zbarimg, as a phone
camera would) opens the code's own page; a friend redeems it at the till; ``storyloop report``
credits the Mastodon post the first customer came through; the customer comes back and the
till shows the reward earned and hands it over.

Screenshots land in /tmp/storyloop-shots/referral-<step>-<width>.png.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import full_shot, watch_errors
from tests.customers.test_referral import enable_referrals
from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import (
    PASSWORD,
    add_user,
    offer_story,
    open_shop,
    shared_code,
    storyloop,
    write_manifest,
)

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/storyloop-shots")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    shop = open_shop(root, f"sqlite:///{root / 'var' / 'storyloop.db'}")
    enable_referrals(shop, {"reward": "a free coffee", "max_per_referrer": 5})
    # an SMTP server in the settings makes the confirmation offer the invitation by email too
    mail = {"host": "127.0.0.1", "port": 2525, "starttls": False, "sender": "shop@cedar.example"}
    with (root / "pelicanconf.py").open("a", encoding="utf-8") as conf:
        conf.write(f'\nSTORYLOOP["channels"]["email"] = {mail!r}\n')
    add_user(shop, "mia", "staff", "berlin-1")
    yield shop
    shop.engine.dispose()


def _page(browser: Any, errors: list[str], viewport: dict[str, int]) -> Any:
    phone = viewport["width"] < 500
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
    context.add_cookies([{"name": "sl_lang", "value": "en", "url": "http://127.0.0.1"}])
    return watch_errors(context.new_page(), errors)


def _shot(page: Any, step: str) -> Path:
    return full_shot(page, SHOTS / f"referral-{step}-{page.viewport_size['width']}.png")


def _log_in(page: Any, site: Site) -> None:
    page.goto(f"http://127.0.0.1:{site.port}/till")
    page.get_by_label("Name").fill("mia")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/till")


def _redeem(page: Any, code: str, receipt: str) -> None:
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Check code").click()
    page.get_by_label("Amount paid").fill("45,50")
    page.get_by_label("Receipt number").fill(receipt)
    page.get_by_role("button", name="Confirm").click()
    assert page.get_by_text("Recorded: 45,50 €").is_visible()


def test_the_till_hands_out_a_referral_code_and_rewards_the_returning_customer(
    site: Site, browser: Any, zbarimg_path: str
) -> None:
    story = offer_story("kreuzberg-tiles", "berlin")
    write_manifest(site, story)
    code = shared_code(site, story, "post-1", channel="mastodon")
    tracker = Tracker(site).start()
    errors: list[str] = []
    try:
        till = _page(browser, errors, PHONE)
        _log_in(till, site)
        _redeem(till, code, "R-3001")
        card = till.locator(".referral")
        referral = card.locator("#referral-code").inner_text()
        assert referral.startswith("CC-") and referral != code
        assert till.get_by_label("Or send it by email (optional)").is_visible()
        shot = _shot(till, "1-handed-out")
        card.screenshot(path=str(SHOTS / "referral-card.png"))
        read = subprocess.run(
            [zbarimg_path, "--quiet", "--raw", str(SHOTS / "referral-card.png")],
            capture_output=True,
            text=True,
        )
        assert read.stdout.strip() == f"http://127.0.0.1:{site.port}/referral/{referral}", shot

        # the customer's phone opens the link the QR holds: the code to keep and show
        customer = _page(browser, errors, PHONE)
        customer.goto(read.stdout.strip())
        assert customer.locator("#code").inner_text() == referral
        assert customer.get_by_text("A free sample for kreuzberg-tiles").is_visible()
        _shot(customer, "2-customer-page")

        # a friend brings it: credited to the referrer and to the Mastodon post
        till.get_by_role("link", name="Next customer").click()
        _redeem(till, referral, "R-3002")

        report = storyloop(site, "report", "--format", "json")
        rows = json.loads(report.stdout)
        shop_rows = {(r["story"], r["channel"]): r["redemptions"] for r in rows["rows"]}
        assert shop_rows[("kreuzberg-tiles", "mastodon")] == 2  # the customer, then the friend
        brought = {(r["story"], r["channel"]): r["customers"] for r in rows["brought_by_customers"]}
        assert brought == {("kreuzberg-tiles", "mastodon"): 1}

        # the customer comes back with the code: one reward due, handed over once
        for viewport in (PHONE, DESKTOP):
            back = till if viewport is PHONE else _page(browser, errors, DESKTOP)
            if viewport is DESKTOP:
                _log_in(back, site)
            back.goto(f"http://127.0.0.1:{site.port}/till")
            back.get_by_label("Code", exact=True).fill(referral)
            back.get_by_role("button", name="Check code").click()
            assert back.locator(".referral dd").first.inner_text() == "1"
            _shot(back, "3-rewards")
        till.get_by_role("button", name="Hand over a reward (1 due): a free coffee").click()
        assert till.get_by_text("Hand over: a free coffee").is_visible()
        assert till.get_by_text("No reward due now.", exact=False).is_visible()
        _shot(till, "4-reward-given")
    finally:
        tracker.kill()
    assert errors == []
