"""End to end through real processes: build, publish to the outbox, follow the tracked link over
HTTP, post a sale and a redemption, and read exactly those numbers in the report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import free_port, need
from tests.tracking.trackkit import (
    API_TOKEN,
    ROOT_DIR,
    Site,
    Tracker,
    request,
    run_storyloop,
)

pytestmark = pytest.mark.slow

STORY = """Title: A tea room in Xiamen
Date: {date}
Slug: tea-room
Lang: en
Category: stories
Region: xiamen
Summary: A small room for tea, built from old fir boards.
Channels: mastodon
Publish: {publish}
Offer: A free tea tray oiling in the Xiamen shop
Store: xiamen-1

We built a tea room from old fir boards. See [the tray we oil](/pages/tray.html) in the shop.
"""

OVERRIDES = """
SITEURL = "http://127.0.0.1:{port}"
FEED_DOMAIN = SITEURL
THEME = {theme!r}
STORYLOOP["database_url"] = {db_url!r}
STORYLOOP["tracking"] = {{
    "base_url": "http://127.0.0.1:{port}",
    "host": "127.0.0.1",
    "port": {port},
    "offer_prefix": "CC",
    "currency": "CNY",
    "api_token": {{"env": "STORYLOOP_API_TOKEN"}},
}}
STORYLOOP["channels"] = {{"mastodon": {{"instance": "https://mastodon.example"}}}}
"""


def _site(root: Path, db_url: str) -> Site:
    from publisher import db
    from publisher import settings as settings_mod

    port = free_port()
    (root / "content" / "stories").mkdir(parents=True)
    (root / "content" / "images").mkdir()
    shutil.copy(ROOT_DIR / "content" / "images" / "logo.svg", root / "content" / "images")
    now = datetime.now(UTC)
    (root / "content" / "stories" / "tea-room.md").write_text(
        STORY.format(
            date=(now - timedelta(days=1)).strftime("%Y-%m-%d %H:%M"),
            publish=(now - timedelta(minutes=5)).isoformat(timespec="seconds"),
        ),
        encoding="utf-8",
    )
    conf = (ROOT_DIR / "pelicanconf.py").read_text(encoding="utf-8")
    theme = str(ROOT_DIR / "themes" / "storyloop")
    conf += OVERRIDES.format(port=port, theme=theme, db_url=db_url)
    (root / "pelicanconf.py").write_text(conf, encoding="utf-8")
    settings = settings_mod.load(root / "pelicanconf.py")
    return Site(root, settings, db.connect(settings.database_url), port)


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_published_story_s_click_sale_and_redemption_show_in_the_report(
    tmp_path: Path, db_url: str
) -> None:
    site = _site(tmp_path / "site", db_url)
    tracker = Tracker(site)
    try:
        _ok(run_storyloop(site, "build"))
        _ok(run_storyloop(site, "publish", "--due"))
        (post,) = (site.root / "var" / "outbox" / "mastodon").glob("*.json")
        text = json.loads(post.read_text(encoding="utf-8"))["text"]
        link = re.search(rf"http://127\.0\.0\.1:{site.port}/go/[0-9A-Za-z]+", text)
        offer = re.search(r"CC-[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]", text)
        assert link and offer, text

        tracker.start()
        path = urlsplit(link.group(0)).path
        preview = request(site.port, "GET", path, {"User-Agent": "http.rb/5.1.1 (Mastodon/4.2)"})
        assert preview.status == 302
        browser = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0"
        answer = request(site.port, "GET", path, {"User-Agent": browser})
        assert answer.status == 302
        target = urlsplit(answer.headers["location"])
        assert target.path == "/stories/tea-room.html"
        page = request(site.port, "GET", f"{target.path}?{target.query}")
        assert page.status == 200 and b"tea room" in page.body.lower()

        click_id = parse_qs(target.query)["sl_cid"][0]
        auth = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
        sale = {"click_id": click_id, "kind": "sale", "value": 299, "order_id": "shop-1"}
        body = json.dumps(sale).encode()
        assert request(site.port, "POST", "/api/conversions", auth, body).status == 201
        redemption = {"code": offer.group(0), "value": "199.50", "store": "xiamen-1"}
        body = json.dumps(redemption).encode()
        assert request(site.port, "POST", "/api/redemptions", auth, body).status == 201
        tracker.stop()  # a clean stop ingests what is left in the journal

        out = _ok(run_storyloop(site, "report", "--by", "story,channel", "--format", "json"))
        (row,) = json.loads(out)["rows"]
        assert (row["story"], row["channel"]) == ("tea-room", "mastodon")
        figures = {k: row[k] for k in ("deliveries", "clicks", "unique_readers", "bot_fetches")}
        assert figures == {"deliveries": 1, "clicks": 1, "unique_readers": 1, "bot_fetches": 1}
        assert (row["leads"], row["online_sales"], row["redemptions"]) == (0, 1, 1)
        assert row["revenue"] == {"CNY": "498.50"}
        # one reader bought online through the click; the code printed in the post was redeemed
        # in the shop without a click: counted apart, so the rate is 1 of 1 reader
        assert (row["redemptions_linked"], row["redemptions_code_only"]) == (0, 1)
        assert row["conversion_rate"] == 1.0 and row["flags"] == []

        need(shutil.which("pdftocairo") is not None, "pdftocairo (poppler-utils) is missing")
        made = _ok(run_storyloop(site, "poster", "tea-room", "--format", "svg"))
        svg = site.root / "var" / "posters" / "tea-room-xiamen-1-a4.svg"
        assert str(svg) in made
        assert re.search(r"CC-[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]", svg.read_text(encoding="utf-8"))
        again = _ok(run_storyloop(site, "poster", "tea-room"))
        assert (site.root / "var" / "posters" / "tea-room-xiamen-1-a4.pdf").is_file()
        assert made.splitlines()[1] == again.splitlines()[1]  # the same QR link and offer code
    finally:
        tracker.kill()
        site.engine.dispose()
        shutil.rmtree(site.root / "output", ignore_errors=True)
