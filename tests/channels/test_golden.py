"""Each adapter's render of the sample site, compared with checked-in golden files.

Regenerate after an intended change with ``STORYLOOP_UPDATE_GOLDEN=1 pytest tests/channels``
and review the diff like code: it is exactly what editors' stories will look like on each network.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from channels.base import ChannelContext, Links, installed
from channels.text import find_urls
from publisher.manifest import load_manifest
from publisher.model import Story

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "tests" / "golden" / "manifest.json"
GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("STORYLOOP_UPDATE_GOLDEN") == "1"
TRACK = "https://t.cedarandclay.example/go"
SETTINGS: dict[str, Any] = {
    "mastodon": {"instance": "https://mastodon.social", "visibility": "public"},
    "bluesky": {"handle": "cedarandclay.bsky.social"},
    "telegram": {"chat_id": "@cedarandclay"},
    "x": {"username": "cedarandclay"},
    "wechat": {"appid": "wx0000000000000000", "author": "松陶家居"},
    "weibo": {"safe_domain": "127.0.0.1"},
    "email": {"sender": "Cedar & Clay <stories@cedarandclay.example>"},
    "webhook": {"url": "http://127.0.0.1:9000/storyloop"},
}


def tracked_links(story: Story, index: int) -> Links:
    """Stand-ins for tracked links: stable, and visibly not the story's own URLs."""
    urls = {story.url: f"{TRACK}/{story.slug}"}
    for n, (start, end) in enumerate(find_urls(story.html)):
        urls.setdefault(story.html[start:end], f"{TRACK}/{story.slug}-{n}")
    return Links(urls=urls, offer_code=f"CC{index:03d}" if story.offer else None)


def render_all(name: str, tmp_path: Path) -> dict[str, Any]:
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=ROOT / "content")
    adapter = installed()[name]({"name": name, **SETTINGS.get(name, {})}, ctx)
    out: dict[str, Any] = {}
    for index, story in enumerate(load_manifest(MANIFEST).stories):
        variant = min(story.variants) if story.variants else None
        post = adapter.render(story, variant, tracked_links(story, index))
        out[story.slug] = {
            "variant": variant,
            "text": post.text,
            "images": list(post.images),
            "payload": post.payload,
        }
    return json.loads(json.dumps(out, ensure_ascii=False, default=str))  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(installed()))
def test_render_of_the_sample_site_matches_the_golden_file(name: str, tmp_path: Path) -> None:
    assert MANIFEST.exists(), f"{MANIFEST} is missing: the sample site's golden manifest"
    rendered = render_all(name, tmp_path)
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.write_text(json.dumps(rendered, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert path.exists(), f"{path} missing: run with STORYLOOP_UPDATE_GOLDEN=1 and review it"
    expected = json.loads(path.read_text(encoding="utf-8"))
    for slug in sorted(set(expected) | set(rendered)):
        assert rendered.get(slug) == expected.get(slug), f"{name}: {slug} differs from {path}"
