"""The sample site in a real headless Chromium, at a phone's and a desktop's size.

The site is built with SITEURL pointing at a stdlib HTTP server on a free loopback port, so every
absolute link the theme writes is followed for real. Screenshots land in /tmp/storyloop-shots/.
"""

from __future__ import annotations

import functools
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.site_helpers import pelican_build

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/storyloop-shots")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 800)}
PAGES = {
    "home": "",
    "story": "stories/shanghai-laogongfang-kitchen.html",
    "testimonials": "testimonials/",
}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sample site, built for and served from a free port on 127.0.0.1."""
    out = tmp_path_factory.mktemp("browser-site")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=out))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    pelican_build(out, site_url=url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")  # a live sync Playwright blocks every later one in the worker
def browser(playwright: Any, chromium_path: str) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=chromium_path, args=ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@dataclass
class Visit:
    """One page load, with everything that went wrong while it loaded."""

    page: Any
    errors: list[str] = field(default_factory=list)


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def visit(browser: Any, url: str, viewport: str, **context: Any) -> Visit:
    width, height = VIEWPORTS[viewport]
    page = browser.new_context(viewport={"width": width, "height": height}, **context).new_page()
    found = Visit(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            found.errors.append(f"console: {message.text}")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            found.errors.append(f"{response.status}: {response.url}")

    def on_failure(request: Any) -> None:
        found.errors.append(f"failed: {request.url} {request.failure}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("requestfailed", on_failure)
    page.on("pageerror", lambda error: found.errors.append(f"page error: {error}"))
    page.goto(url, wait_until="load")
    if context.get("java_script_enabled", True):  # without it Chromium loads every image eagerly
        scroll_through(page)
    return found


def scroll_through(page: Any) -> None:
    """Scroll to the bottom and back so lazy images load, then wait until every image has.

    Each step waits two frames, so the lazy-loading observer sees every position; the final wait
    is on the images themselves, since Playwright's "networkidle" is reached once and stays so.
    """
    height = page.evaluate("document.scrollingElement.scrollHeight")
    for y in range(0, height, 600):
        page.evaluate(SCROLL_TO, y)
    page.wait_for_function("[...document.images].every(img => img.complete)")
    page.evaluate(SCROLL_TO, 0)


SCROLL_TO = """
y => new Promise(done => {
  window.scrollTo(0, y);
  requestAnimationFrame(() => requestAnimationFrame(done));
})
"""


BROKEN_IMAGES = """
() => [...document.images]
  .filter(img => !img.complete || img.naturalWidth === 0)
  .map(img => img.currentSrc || img.src)
"""

META = """
() => ({
  canonical: document.querySelector('link[rel=canonical]')?.href,
  ogTitle: document.querySelector('meta[property="og:title"]')?.content,
  ogImage: document.querySelector('meta[property="og:image"]')?.content,
  ogUrl: document.querySelector('meta[property="og:url"]')?.content,
  card: document.querySelector('meta[name="twitter:card"]')?.content,
  lang: document.documentElement.lang,
  h1: document.querySelectorAll('h1').length,
})
"""


@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_cleanly_with_its_meta_tags_at_phone_and_desktop_size(
    browser: Any, site_url: str, viewport: str, name: str
) -> None:
    loaded = visit(browser, f"{site_url}/{PAGES[name]}", viewport)
    page = loaded.page
    try:
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{viewport}-{name}.png"), full_page=True)
        assert loaded.errors == []
        assert page.evaluate(BROKEN_IMAGES) == []
        tags = page.evaluate(META)
        assert tags["canonical"] == tags["ogUrl"] == f"{site_url}/{PAGES[name]}"
        assert tags["ogTitle"] and tags["ogImage"].startswith(f"{site_url}/")
        assert tags["card"] == "summary_large_image"
        assert tags["lang"] in ("zh", "en") and tags["h1"] == 1
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= page.evaluate("window.innerWidth"), "the page scrolls sideways"
    finally:
        page.context.close()


def test_every_link_on_the_home_page_answers(browser: Any, site_url: str) -> None:
    loaded = visit(browser, f"{site_url}/", "desktop")
    page = loaded.page
    try:
        links = page.evaluate("() => [...new Set([...document.links].map(a => a.href))]")
        internal = [u.split("#")[0] for u in links if u.startswith(site_url)]
        assert len(internal) > 15
        for url in internal:
            assert page.request.get(url).status == 200, url
    finally:
        page.context.close()


def test_first_tab_reveals_a_visible_skip_link_with_a_focus_ring(
    browser: Any, site_url: str
) -> None:
    page = visit(browser, f"{site_url}/{PAGES['story']}", "phone").page
    try:
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
              const el = document.activeElement, box = el.getBoundingClientRect();
              const style = getComputedStyle(el);
              return {href: el.getAttribute('href'), top: box.top, bottom: box.bottom,
                      outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth)};
            }"""
        )
        assert focused["href"] == "#main"
        assert focused["top"] >= 0 and focused["bottom"] > focused["top"]
        assert focused["outline"] != "none" and focused["outlineWidth"] >= 2
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
    finally:
        page.context.close()


def test_story_reads_the_same_without_javascript(browser: Any, site_url: str) -> None:
    page = visit(browser, f"{site_url}/{PAGES['story']}", "phone", java_script_enabled=False).page
    try:
        assert page.locator("h1").inner_text().startswith("六周")
        assert page.locator("aside.offer img.offer-qr").evaluate("img => img.naturalWidth") > 0
        assert page.locator("table").count() == 1
    finally:
        page.context.close()


def test_the_offer_qr_code_reads_back_as_the_story_s_tracked_qr_link(
    browser: Any, site_url: str, tmp_path: Path, zbarimg_path: str
) -> None:
    page = visit(browser, f"{site_url}/{PAGES['story']}", "phone").page
    try:
        shot = tmp_path / "qr.png"
        page.locator("aside.offer img.offer-qr").screenshot(path=str(shot))
    finally:
        page.context.close()
    read = subprocess.run(
        [zbarimg_path, "--quiet", "--raw", str(shot)], capture_output=True, text=True
    )
    # the tracker's /qr/<slug> (pelicanconf's tracking base_url): a tracked link of the `site`
    # channel that redirects to the story (tests/web/test_web_shop_flow.py follows it)
    slug = PAGES["story"].removeprefix("stories/").removesuffix(".html")
    assert read.stdout.strip() == f"http://127.0.0.1:8000/qr/{slug}", read.stderr
