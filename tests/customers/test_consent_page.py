"""The withdrawal link in a real Chromium: shown after the testimonial is sent, opened on a phone
without JavaScript, in the customer's language (and Chinese and German), confirmed with one
CSRF-checked button; the testimonial's pending post is cancelled at once, the owner's page
shows what became of each copy, and the dashboard links to it.

Screenshots land in /tmp/storyloop-shots/consent-<step>.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from publisher import ledger, plan
from publisher.customers import invites
from publisher.customers.pull import slug_for
from publisher.customers.records import all_received
from publisher.model import MANIFEST_VERSION, Manifest
from publisher.web.app import session_key
from tests.conftest import full_shot, watch_errors
from tests.engine.enginekit import story
from tests.tracking.trackkit import SIGNING_KEY, Site, Tracker
from tests.web.shopkit import PASSWORD, add_user, open_shop, write_manifest

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/storyloop-shots")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("STORYLOOP_SIGNING_KEY", SIGNING_KEY)  # the server's, for its links
    root = tmp_path / "site"
    shop = open_shop(root, f"sqlite:///{root / 'var' / 'storyloop.db'}")
    add_user(shop, "olga", "owner")
    yield shop
    shop.engine.dispose()


def _page(browser: Any, errors: list[str], *, phone: bool = True, script: bool = True) -> Any:
    size = PHONE if phone else DESKTOP
    extra = {"is_mobile": True, "has_touch": True} if phone else {}
    context = browser.new_context(viewport=size, java_script_enabled=script, **extra)
    return watch_errors(context.new_page(), errors)


def _shot(page: Any, step: str) -> Path:
    return full_shot(page, SHOTS / f"consent-{step}.png")


def _send_testimonial(browser: Any, site: Site, errors: list[str]) -> str:
    """The customer sends a testimonial; the thank-you page shows their withdrawal link."""
    secret = invites.secret_for(session_key(site.settings))
    token = invites.make(secret, "berlin-1", "shop:berlin-1:R-3001", date.today())
    phone = _page(browser, errors)
    phone.goto(f"{site.settings.tracking_base_url}{invites.PATH}{token}?lang=en")
    phone.get_by_label("Your words").fill("The new floor is beautiful and it was quick.")
    phone.get_by_label("5 ★").check()
    phone.get_by_label("Your name as it should appear").fill("Lena & Tom")
    phone.get_by_label("social media accounts", exact=False).check()
    phone.get_by_label("until I withdraw", exact=False).check()
    phone.get_by_label("I agree (consent", exact=False).check()
    phone.get_by_role("button", name="Send").click()
    assert phone.get_by_role("heading", name="Changed your mind later?").is_visible()
    link = phone.locator(".withdraw-link a").get_attribute("href")
    _shot(phone, "1-thanks-with-link")
    phone.context.close()
    assert link and link.startswith(f"{site.settings.tracking_base_url}/withdraw/")
    return str(link)


def _pending_post(site: Site) -> str:
    """The testimonial, planned on Mastodon for the day after tomorrow: the delivery's id."""
    [item] = all_received(site.engine)
    when = datetime.now(UTC) + timedelta(days=2)
    testimonial = story(slug_for(item), when, channels=["mastodon"], consent=True)
    write_manifest(site, testimonial)
    manifest = Manifest(MANIFEST_VERSION, site.settings.site_url, (testimonial,))
    plan.plan_and_apply_in_steps(site.engine, manifest, site.settings, now=datetime.now(UTC))
    return ledger.delivery_id(testimonial.slug, "mastodon", None)


def _state(site: Site, id_: str) -> str:
    with site.engine.connect() as conn:
        found = conn.execute(
            select(ledger.deliveries.c.state).where(ledger.deliveries.c.id == id_)
        ).scalar_one()
    return str(found)


def test_the_customer_withdraws_on_a_phone_without_javascript_and_the_post_is_cancelled(
    site: Site, browser: Any
) -> None:
    tracker = Tracker(site).start()
    errors: list[str] = []
    try:
        link = _send_testimonial(browser, site, errors)
        delivery = _pending_post(site)
        assert _state(site, delivery) == ledger.PLANNED

        # a forged or altered link opens nothing
        assert requests.get(link[:-3] + "xyz", timeout=10).status_code == 404
        # a POST without the page's CSRF token changes nothing
        assert requests.post(link, data={"csrf": "forged"}, timeout=10).status_code == 403
        assert _state(site, delivery) == ledger.PLANNED

        for lang, heading in (("zh", "撤回您的同意"), ("de", "Einwilligung widerrufen")):
            page = _page(browser, errors, script=False)
            page.goto(f"{link}?lang={lang}")
            assert page.get_by_role("heading", name=heading, exact=True).is_visible()
            _shot(page, f"2-withdraw-{lang}")
            page.context.close()

        wide = _page(browser, errors, phone=False, script=False)
        wide.goto(f"{link}?lang=en")
        _shot(wide, "3-withdraw-desktop")
        wide.context.close()

        phone = _page(browser, errors, script=False)
        phone.goto(f"{link}?lang=en")
        assert phone.get_by_role("heading", name="Withdraw your consent", exact=True).is_visible()
        assert "Lena & Tom" in phone.locator("main").inner_text()
        assert phone.locator("script").count() == 0  # a plain form: no JavaScript needed
        _shot(phone, "4-withdraw")
        button = phone.get_by_role("button", name="Withdraw my consent")
        button.focus()  # a keyboard reaches it and Enter sends the form
        with phone.expect_navigation():
            phone.keyboard.press("Enter")
        assert phone.get_by_text("Your consent is withdrawn").first.is_visible()
        assert phone.get_by_text("Planned posts cancelled: 1.").is_visible()
        _shot(phone, "5-withdrawn")
        assert _state(site, delivery) == ledger.CANCELLED  # at once, before any sweep

        phone.goto(link)  # the link again: says it is done, offers nothing more
        assert phone.get_by_text("You withdrew it on").is_visible()
        assert phone.get_by_role("button", name="Withdraw my consent").count() == 0
        phone.context.close()

        owner = _page(browser, errors, phone=False)
        owner.goto(f"http://127.0.0.1:{site.port}/login?next=/dashboard")
        owner.get_by_label("Name").fill("olga")
        owner.get_by_label("Password").fill(PASSWORD)
        owner.get_by_role("button", name="Log in").click()
        owner.wait_for_url("**/dashboard")
        owner.get_by_role("link", name="Consent and removals", exact=False).click()
        owner.wait_for_url("**/consent")
        [item] = all_received(site.engine)
        assert owner.get_by_role("heading", name=slug_for(item)).is_visible()
        assert owner.get_by_text("cancelled before it went out").is_visible()
        assert owner.get_by_text("(withdrawal link)", exact=False).is_visible()
        _shot(owner, "6-owner")
        owner.context.close()
        assert errors == []
    finally:
        tracker.kill()


def test_the_owner_page_is_for_the_owner_only(site: Site) -> None:
    tracker = Tracker(site).start()
    try:
        anonymous = requests.get(
            f"http://127.0.0.1:{site.port}/consent", allow_redirects=False, timeout=10
        )
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=/consent"
    finally:
        tracker.kill()
