"""A customer tells the story, in a real Chromium at a phone's size: a shop assistant redeems a
code at the Berlin till, the confirmation shows a QR invitation (read back from a screenshot
with zbarimg, as a phone camera would), the customer sends a testimonial with a photo carrying
GPS EXIF, a second use of the link is refused, and ``storyloop testimonials pull`` puts it on a
git branch whose Markdown passes ``check`` and builds with the verified mark and no GPS data.

Screenshots land in /tmp/storyloop-shots/customers-<step>.png.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from publisher.customers import photos
from tests.conftest import ROOT, full_shot, watch_errors
from tests.customers.photokit import gps_jpeg, has_gps, metadata
from tests.site_helpers import BIN, parse
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


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    shop = open_shop(root, f"sqlite:///{root / 'var' / 'storyloop.db'}")
    add_user(shop, "mia", "staff", "berlin-1")
    yield shop
    shop.engine.dispose()


def _phone(browser: Any, errors: list[str]) -> Any:
    page = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    return watch_errors(page, errors)


def _shot(page: Any, step: str) -> Path:
    return full_shot(page, SHOTS / f"customers-{step}.png")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _redeem_at_till(browser: Any, site: Site, code: str, receipt: str) -> tuple[Any, list[str]]:
    errors: list[str] = []
    till = _phone(browser, errors)
    till.goto(f"http://127.0.0.1:{site.port}/till")
    till.get_by_label("Name").fill("mia")
    till.get_by_label("Password").fill(PASSWORD)
    till.get_by_role("button", name="Log in").click()
    till.wait_for_url("**/till")
    till.get_by_label("Code", exact=True).fill(code)
    till.get_by_role("button", name="Code prüfen").click()
    till.get_by_label("Bezahlter Betrag").fill("45,50")
    till.get_by_label("Belegnummer").fill(receipt)
    till.get_by_role("button", name="Bestätigen").click()
    assert till.get_by_text("Erfasst: 45,50 €").is_visible()
    return till, errors


def test_a_till_invitation_becomes_a_verified_testimonial_on_a_git_branch(
    site: Site, browser: Any, tmp_path: Path, zbarimg_path: str
) -> None:
    story = offer_story("kreuzberg-tiles", "berlin")
    write_manifest(site, story)
    code = shared_code(site, story, "post-1")
    tracker = Tracker(site).start()
    try:
        till, till_errors = _redeem_at_till(browser, site, code, "R-2001")
        qr = till.locator(".invite img.qr")
        assert qr.evaluate("img => img.naturalWidth") > 0
        shot = _shot(till, "1-till-invitation")
        read = subprocess.run(
            [zbarimg_path, "--quiet", "--raw", str(shot)], capture_output=True, text=True
        )
        link = read.stdout.strip()
        assert link.startswith(f"{site.settings.tracking_base_url}/testimonial/"), read
        assert "R-2001" not in link and code not in link
        assert till_errors == []

        # the same form at a desktop's size (opening it does not use the invitation)
        wide = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
        wide.goto(link + "?lang=de")
        assert wide.get_by_role("heading", name="Wie war Ihr Besuch?").is_visible()
        _shot(wide, "2-form-desktop")
        wide.context.close()

        # the customer's own phone: no session, the shop's language from the store (German)
        errors: list[str] = []
        phone = _phone(browser, errors)
        photo = tmp_path / "IMG_0042.jpg"
        photo.write_bytes(gps_jpeg())
        assert has_gps(photo.read_bytes())
        phone.goto(link + "?lang=en")
        assert phone.get_by_role("heading", name="How was your visit?").is_visible()
        phone.get_by_label("Your words").fill(
            "The tiles were cut in front of us. Kemal explained every step.\n\nWe love the floor."
        )
        phone.get_by_label("4 ★").check()
        phone.get_by_label("Your name as it should appear").fill("Lena & Tom")
        phone.get_by_label("Photos (up to 4, optional)").set_input_files(str(photo))
        phone.get_by_label("social media accounts", exact=False).check()
        phone.get_by_label("until a date I choose", exact=False).check()
        until = (datetime.now(UTC).date() + timedelta(days=700)).isoformat()
        phone.get_by_label("Last day").fill(until)
        phone.get_by_label("I agree (consent", exact=False).check()
        _shot(phone, "2-form")
        phone.get_by_role("button", name="Send").click()
        assert phone.get_by_text("Thank you, Lena & Tom!").is_visible()
        _shot(phone, "3-thanks")
        assert errors == []

        again = phone.goto(link)  # the same link, a second time: refused
        assert again.status == 410
        assert phone.get_by_text("This invitation was used already").is_visible()
        _shot(phone, "4-used")

        # a forged POST with a fresh session and CSRF token is refused as well (410)
        http = requests.Session()
        form = http.get(link, timeout=10)
        assert form.status_code == 410
        token = http.get(f"http://127.0.0.1:{site.port}/login", timeout=10).text
        csrf = token.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        data = {"csrf": csrf, "text": "spam", "rating": "5", "name": "x", "scope": "site",
                "duration": "withdrawn", "agree": "yes"}  # fmt: skip
        assert http.post(link, data=data, timeout=10).status_code == 410
        till.context.close()
        phone.context.close()
    finally:
        tracker.kill()

    # what was kept: the photo without any EXIF, upright and resized; the consent as shown
    (kept,) = list((site.settings.var_dir / "testimonials").glob("*/1.jpg"))
    tags, blocks = metadata(kept.read_bytes())
    assert tags == {} and blocks == set() and not has_gps(kept.read_bytes())
    with Image.open(io.BytesIO(kept.read_bytes())) as stored:
        assert max(stored.size) == photos.MAX_SIDE and stored.height > stored.width
    listed = storyloop(site, "testimonials")
    assert listed.returncode == 0, listed.stderr
    assert (
        "berlin-1\t4/5\tLena & Tom\t1 photo(s)\tconsent site, social, newsletter" in listed.stdout
    )
    assert f"until {until}\tnew" in listed.stdout

    # the site's content and theme, not in git yet
    root = site.root
    shutil.copytree(ROOT / "content", root / "content")
    shutil.copytree(ROOT / "themes", root / "themes")
    build_conf = (ROOT / "pelicanconf.py").read_text(encoding="utf-8")
    (root / "build.py").write_text(build_conf, encoding="utf-8")

    # content/ not in git yet: one clear line, nothing pulled
    refused = storyloop(site, "testimonials", "pull")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "is not in a git repository" in refused.stderr
    assert "\tnew" in storyloop(site, "testimonials").stdout

    # now committed as the site's repository
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "content", "themes", "build.py")
    _git(root, "-c", "user.name=Owner", "-c", "user.email=o@example.com", "commit", "-qm", "site")
    pulled = storyloop(site, "testimonials", "pull")
    assert pulled.returncode == 0, pulled.stderr
    branch = pulled.stdout.strip().splitlines()[-1].split("branch ")[1].split(":")[0]
    assert _git(root, "branch", "--show-current") == "main"  # the editor's checkout untouched
    log = _git(root, "log", "--format=%s", f"main..{branch}").splitlines()
    assert log == ["Testimonial from Lena & Tom (berlin-1, visit on " + _visit(site) + "), 4/5"]
    assert "pulled to testimonials/" in storyloop(site, "testimonials").stdout
    again = storyloop(site, "testimonials", "pull")
    assert again.returncode == 0 and "nothing new to pull" in again.stdout

    _git(root, "switch", "-q", branch)
    (page_md,) = (root / "content" / "testimonials").glob("berlin-1-*.md")
    text = page_md.read_text(encoding="utf-8")
    for line in (
        "Customer: Lena & Tom",
        "Rating: 4",
        "Store: berlin-1",
        "Consent: yes",
        f"Consent-Until: {until}",
        "Consent-Scope: site, social, newsletter",
        f"Verified: berlin-1 {_visit(site)}",
    ):
        assert f"\n{line}\n" in text, line
    checked = subprocess.run(
        [str(BIN / "storyloop"), "--config", str(root / "build.py"), "check"],
        cwd=root, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    out = tmp_path / "out"
    built = subprocess.run(
        [str(BIN / "pelican"), "content", "-s", "build.py", "-o", str(out), "--ignore-cache"],
        cwd=root, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    html = out / "testimonials" / f"{page_md.stem}.html"
    soup = parse(html)
    mark = soup.select_one(".verified")
    assert mark and "Verified customer of Cedar & Clay Berlin Kreuzberg" in mark.get_text()
    (image,) = (out / "images" / "testimonials").glob(f"{page_md.stem}-1.jpg")
    assert not has_gps(image.read_bytes()) and metadata(image.read_bytes())[0] == {}


def _visit(site: Site) -> str:
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
