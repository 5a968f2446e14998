"""A build large enough that the plugin works beside Pelican: QR codes drawn by a child process
while the content is still being read (``qrcodes.CHILD_THRESHOLD``), and the manifest streamed
line by line after the pages. What comes out must be what a small, in-process build gives."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from pelican import signals
from pelican.contents import Article
from pelican.settings import read_settings
from pelican.urlwrappers import Category
from pelican.utils import SafeDatetime

from publisher import pelican_plugin, qrcodes
from publisher.manifest import load_manifest
from tests.site_helpers import BIN, MANIFEST, ROOT, SITE_URL, manifest

STORIES = qrcodes.CHILD_THRESHOLD + 20


def qr_link(slug: str) -> str:
    """What a story's QR code holds: the tracker's tracked /qr/ link (pelicanconf's base_url)."""
    return f"http://127.0.0.1:8000/qr/{slug}"


def story(i: int) -> str:
    return f"""Title: Kitchen {i}
Date: 2026-03-{1 + i % 28:02d} 10:00
Slug: kitchen-{i}
Lang: en
Category: stories
Region: berlin
Channels: mastodon
Offer: 10% off hardware, kitchen {i}
Store: berlin-1
Summary: Kitchen number {i}

We kept the terrazzo floor of kitchen {i}.

See [the shop](https://example.com/shop?item={i}).
"""


EXPIRED = """Title: Consent has ended
Date: 2026-03-02 10:00
Slug: consent-ended
Lang: en
Category: testimonials
Customer: Someone
Consent: yes
Consent-Until: 2020-01-01
Rating: 5
Channels: mastodon

Never to be published again.
"""


def build(content: Path, output: Path, **settings: object) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "pelican"), str(content), "-s", "pelicanconf.py", "-o", str(output), "-D"]
    if settings:
        argv += ["-e", *(f"{key}={json.dumps(value)}" for key, value in settings.items())]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("large")
    content = base / "content"
    (content / "stories").mkdir(parents=True)
    (content / "testimonials").mkdir()
    for i in range(STORIES):
        (content / "stories" / f"kitchen-{i}.md").write_text(story(i), encoding="utf-8")
    (content / "testimonials" / "consent-ended.md").write_text(EXPIRED, encoding="utf-8")
    output = base / "output"
    done = build(content, output)
    assert done.returncode == 0, done.stdout + done.stderr
    return content, output, done.stdout + done.stderr


def test_manifest_written_beside_the_pages_has_every_story_complete(
    large: tuple[Path, Path, str],
) -> None:
    content, output, _ = large
    stories = load_manifest(output / MANIFEST).stories
    assert len(stories) == STORIES
    for s in stories:
        source = (content.parent / s.source).read_bytes()
        assert s.content_hash == hashlib.sha256(source).hexdigest()
        assert s.text.startswith(f"We kept the terrazzo floor of {s.slug.replace('-', ' ')}.")
        assert s.url == f"{SITE_URL}/stories/{s.slug}.html"
    assert [(s.publish_at, s.slug) for s in stories] == sorted(
        (s.publish_at, s.slug) for s in stories
    )
    assert not list(output.glob(f".{MANIFEST}*")), "no temporary file left behind"
    assert manifest(output)["version"] == 1


def test_each_story_page_carries_the_code_the_child_drew_for_it(
    large: tuple[Path, Path, str],
) -> None:
    _, output, _ = large
    for s in load_manifest(output / MANIFEST).stories:
        page = (output / "stories" / f"{s.slug}.html").read_text(encoding="utf-8")
        assert qrcodes.data_uri(qrcodes.svg(qr_link(s.slug))) in page
    assert not (output / "qr").exists(), "codes live in the pages, not in files"


def test_rebuilding_unchanged_content_leaves_the_manifest_untouched(
    large: tuple[Path, Path, str],
) -> None:
    content, output, _ = large
    before = (output / MANIFEST).stat().st_mtime_ns
    done = build(content, output)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (output / MANIFEST).stat().st_mtime_ns == before
    assert not list(output.glob(f".{MANIFEST}*"))


def test_the_large_build_took_the_paths_this_file_is_about(large: tuple[Path, Path, str]) -> None:
    _, _, log = large
    assert f"manifest: {STORIES} encoded, 0 copied" in log  # after the pages, no fork
    assert "QR codes: drawn by child process" in log


def test_a_warm_rebuild_takes_the_codes_from_the_cache_and_keeps_only_current_ones(
    large: tuple[Path, Path, str], tmp_path: Path
) -> None:
    content, _, _ = large
    cache, output = tmp_path / "cache", tmp_path / "output"
    caching = {"CACHE_CONTENT": True, "CACHE_PATH": str(cache), "LOAD_CONTENT_CACHE": True}
    first = build(content, output, **caching)
    assert first.returncode == 0 and "QR codes: drawn by child process" in first.stdout
    saved = json.loads((cache / qrcodes.CACHE_NAME).read_text(encoding="utf-8"))
    urls = {qr_link(s.slug) for s in load_manifest(output / MANIFEST).stories}
    assert saved["style"] == qrcodes.STYLE and set(saved["codes"]) == urls
    again = build(content, output, **caching)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "QR codes: drawn by child process" not in again.stdout
    page = (output / "stories" / "kitchen-7.html").read_text(encoding="utf-8")
    assert qrcodes.data_uri(qrcodes.svg(qr_link("kitchen-7"))) in page


def test_region_pages_are_paginated_like_the_index(large: tuple[Path, Path, str]) -> None:
    _, output, _ = large
    first = BeautifulSoup((output / "regions/berlin.html").read_text("utf-8"), "html.parser")
    assert len(first.select("article.card")) == 12
    assert f"{STORIES} 篇故事与评价" in first.get_text()
    after = first.select_one('a[rel="next"]')
    assert after is not None and after["href"] == f"{SITE_URL}/regions/berlin2.html"
    last = -(-STORIES // 12)
    second = BeautifulSoup((output / "regions/berlin2.html").read_text("utf-8"), "html.parser")
    canonical = second.select_one('link[rel="canonical"]')
    assert canonical is not None and canonical["href"] == f"{SITE_URL}/regions/berlin2.html"
    assert (output / f"regions/berlin{last}.html").is_file()
    assert not (output / f"regions/berlin{last + 1}.html").exists()


def test_posts_share_one_author_and_one_category_object_of_each_name() -> None:
    """Pelican makes an Author (from ``AUTHOR``) and a Category for every post; the plugin
    keeps one of each name, in the post and in its metadata, so a large build holds and caches
    one each instead of one a post."""
    settings = read_settings(str(ROOT / "pelicanconf.py"))
    pelican_plugin.STATE.names = {}
    with signals.content_object_init.muted():  # the plugin is registered by other tests
        posts = [
            Article(
                "<p>Body</p>",
                {
                    "title": f"Kitchen {i}",
                    "date": SafeDatetime(2026, 3, 1 + i),
                    "category": Category("stories" if i < 2 else "testimonials", settings),
                },
                settings=settings,
            )
            for i in range(3)
        ]
    assert posts[0].author is not posts[1].author  # Pelican's own: one a post
    for post in posts:
        pelican_plugin.share_names(post)
    first, second, other = posts
    assert first.author is second.author is other.author and first.authors[0] is first.author
    assert first.category is second.category and first.metadata["category"] is first.category
    assert other.category is not first.category and str(other.category) == "testimonials"
