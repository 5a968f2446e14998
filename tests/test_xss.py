"""No script from content: a site built from tests/xss_vectors.txt, in headless Chromium and in
every channel's rendered output.

Each vector is a story's Title, Summary and body, and the first ones a testimonial's Customer.
The pages are served over HTTP and opened in Chromium: no dialog may open and no handler may run.
Every channel renders every story of the manifest the build wrote, and whatever a network would
read as HTML (the email, WeChat's article, Telegram's HTML text, the webhook's ``html``) is parsed
and must hold no script, no event handler, no frame and no ``javascript:``/``data:`` URL.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup, Tag

from channels.base import ChannelContext, installed
from publisher.manifest import load_manifest
from publisher.model import Story
from tests.channels.test_golden import SETTINGS, tracked_links
from tests.test_content import GOOD_STORY, GOOD_TESTIMONIAL, Site

VECTORS = [
    line
    for line in Path(__file__).with_name("xss_vectors.txt").read_text("utf-8").splitlines()
    if line.strip() and not line.startswith("#")
]
CUSTOMERS = 12  # testimonials whose Customer is a vector
ROOT = Path(__file__).resolve().parent.parent
THEME = ROOT / "themes" / "storyloop"
ACTIVE_TAGS = ("script", "iframe", "frame", "object", "embed", "svg", "math", "base", "meta",
               "link", "form", "input", "button", "select", "textarea", "style", "template",
               "audio", "video", "source", "marquee", "isindex", "noscript")  # fmt: skip
# the pages the sample site writes; Pelican's own fallback templates (archives, tags, authors)
# print titles unescaped, and the theme has none of its own for them
PAGES_AS_SAMPLE = """
SITESUBTITLE = "Hostile content"
DIRECT_TEMPLATES = ["index", "categories", "404"]
TAG_SAVE_AS = TAGS_SAVE_AS = AUTHOR_SAVE_AS = AUTHORS_SAVE_AS = ARCHIVES_SAVE_AS = ""
CATEGORY_URL = "{slug}/"
CATEGORY_SAVE_AS = "{slug}/index.html"
"""
HTML_FIELDS = {
    "email": ("html",),
    "wechat": ("article.content",),
    "telegram": ("text", "caption"),
    "webhook": ("story.html",),
}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def hostile_site(root: Path, site_url: str) -> Path:
    site = Site(root)
    with (root / "pelicanconf.py").open("a", encoding="utf-8") as conf:
        conf.write(f"THEME = {str(THEME)!r}\n{PAGES_AS_SAMPLE}")
    for n, vector in enumerate(VECTORS):
        fields = GOOD_STORY | {"Title": f"V{n} {vector}", "Summary": vector, "Slug": f"v{n}"}
        site.write(f"v{n}.md", fields, body=f"{vector}\n\nWords after vector {n}.")
    for n, vector in enumerate(VECTORS[:CUSTOMERS]):
        fields = GOOD_TESTIMONIAL | {"Customer": vector, "Slug": f"c{n}", "Title": f"C{n}"}
        site.write(f"c{n}.md", fields, body=vector)
    pelican = Path(sys.executable).with_name("pelican")
    argv = [str(pelican), "content", "-s", "pelicanconf.py", "-o", "output", "--log-handler",
            "plain", "-e", f"SITEURL={json.dumps(site_url)}"]  # fmt: skip
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "COLUMNS": "400"})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return root / "output"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("xss-site")
    out = root / "output"
    out.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=out))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    hostile_site(root, url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, out
    finally:
        server.shutdown()
        server.server_close()


def active_content(markup: str) -> list[str]:
    """Everything in ``markup`` a browser could run, as short descriptions (empty: none)."""
    soup = BeautifulSoup(markup, "html.parser")
    found = []
    for tag in soup.find_all(True):
        assert isinstance(tag, Tag)
        if tag.name in ACTIVE_TAGS and not _our_own(tag):
            found.append(f"<{tag.name}>")
        for name, value in tag.attrs.items():
            text = " ".join(value) if isinstance(value, list) else str(value)
            flat = "".join(text.split()).lower()
            if name.lower().startswith("on"):
                found.append(f"<{tag.name} {name}=>")
            elif name in URL_ATTRIBUTES and _script_url(flat):
                found.append(f"<{tag.name} {name}={text[:40]}>")
    return found


URL_ATTRIBUTES = ("href", "src", "action", "formaction", "xlink:href", "data", "style")


def _script_url(flat: str) -> bool:
    return "javascript:" in flat or "vbscript:" in flat or flat.startswith("data:")


def _our_own(tag: Tag) -> bool:
    """What the theme itself writes: its JSON-LD, metadata, stylesheet, icon and logo."""
    if tag.name == "script":
        return tag.get("type") == "application/ld+json"
    if tag.name in ("meta", "link"):
        return tag.find_parent("head") is not None and not tag.get("http-equiv")
    if tag.name == "svg":
        return "brand-mark" in (tag.get("class") or [])
    return False


def test_every_vector_is_built_into_a_page_with_its_title_as_text(
    served: tuple[str, Path],
) -> None:
    """(The words after a vector can go: an unclosed ``<style>`` or comment swallows them, as
    it would in a browser, and the sanitiser drops what it swallowed.)"""
    _, out = served
    kept = 0
    for n, vector in enumerate(VECTORS):
        soup = BeautifulSoup((out / f"stories/v{n}.html").read_text("utf-8"), "html.parser")
        title = soup.find("h1", class_="story-title")
        assert isinstance(title, Tag) and title.get_text() == f"V{n} {vector}"
        kept += f"Words after vector {n}." in soup.get_text()
    assert kept > len(VECTORS) * 3 // 4


def test_built_pages_hold_no_script_handler_frame_or_script_url(served: tuple[str, Path]) -> None:
    _, out = served
    pages = sorted(p for p in out.rglob("*.html") if "theme" not in p.parts)
    assert len(pages) > len(VECTORS)
    for page in pages:
        found = active_content(page.read_text("utf-8"))
        assert not found, f"{page.relative_to(out)}: {found}"


def test_json_ld_keeps_the_hostile_text_as_data(served: tuple[str, Path]) -> None:
    _, out = served
    soup = BeautifulSoup((out / "stories/v0.html").read_text("utf-8"), "html.parser")
    scripts = soup.find_all("script", attrs={"type": "application/ld+json"})
    headline = json.loads(scripts[0].string or "")["headline"]
    assert headline == f"V0 {VECTORS[0]}"


# Run in a process of its own: the browser tests keep a sync Playwright open for the session,
# and a second one cannot start beside it in the same process.
BROWSE = """
import json, sys
from playwright.sync_api import sync_playwright
url, chromium, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
dialogs, foreign = [], []
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
    page = browser.new_page()
    page.on("dialog", lambda d: (dialogs.append(page.url + ": " + d.message), d.dismiss()))
    page.on("request", lambda r: None if r.url.startswith(url) else foreign.append(r.url))
    for path in paths:
        page.goto(url + "/" + path, wait_until="load")
        # what a reader does: hover and focus everything, open every details element
        page.evaluate(
            "() => { for (const el of document.querySelectorAll('body *')) {"
            " el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
            " if (el.focus) el.focus(); if (el.tagName === 'DETAILS') el.open = true; } }")
        page.wait_for_timeout(30)
    browser.close()
print(json.dumps({"dialogs": dialogs, "foreign": foreign}))
"""


def test_no_dialog_opens_and_no_script_loads_in_chromium(
    served: tuple[str, Path], chromium_path: str
) -> None:
    url, _ = served
    paths = ["", "stories/", "testimonials/"] + [f"stories/v{n}.html" for n in range(len(VECTORS))]
    paths += [f"testimonials/c{n}.html" for n in range(CUSTOMERS)]
    done = subprocess.run(
        [sys.executable, "-c", BROWSE, url, chromium_path, *paths],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["dialogs"] == []
    assert seen["foreign"] == []  # e.g. <script src=//127.0.0.1:9/x.js> asked for nothing


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, path)
    elif isinstance(value, str):
        yield path, value


def test_no_channel_renders_active_html_from_any_vector(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    _, out = served
    stories = load_manifest(out / "storyloop-manifest.json").stories
    assert len(stories) == len(VECTORS) + CUSTOMERS
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=out.parent / "content")
    for name, cls in sorted(installed().items()):
        adapter = cls({"name": name, **SETTINGS.get(name, {})}, ctx)
        checked = 0
        for index, story in enumerate(stories):
            post = adapter.render(story, None, tracked_links(story, index))
            for path, text in _strings(post.payload):
                if path in HTML_FIELDS.get(name, ()):
                    checked += 1
                    found = active_content(text)
                    assert not found, f"{name} {story.slug} {path}: {found}"
        assert checked or name not in HTML_FIELDS, f"{name}: no HTML field was rendered"


def test_plain_text_channels_carry_no_markup_from_the_body(
    served: tuple[str, Path], tmp_path: Path
) -> None:
    """Networks that post plain text get the body as text: no tag, no script URL of the raw
    HTML survives into it (the title and summary are the editor's words and shown as such)."""
    import dataclasses

    _, out = served
    stories: list[Story] = [
        dataclasses.replace(s, title="Title", summary="Summary")
        for s in load_manifest(out / "storyloop-manifest.json").stories
    ]
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=out.parent / "content")
    for name, cls in sorted(installed().items()):
        if name in HTML_FIELDS:
            continue
        adapter = cls({"name": name, **SETTINGS.get(name, {})}, ctx)
        for index, story in enumerate(stories):
            post = adapter.render(story, None, tracked_links(story, index))
            for path, text in _strings(post.payload):
                flat = "".join(text.split()).lower()
                assert "<script" not in flat and "onerror=" not in flat, (name, path, text)
                assert "javascript:" not in flat, (name, path, text)
