"""Storyloop's X count against the official ``twitter-text`` npm package, run by node.

The corpus (tests/channels/corpus.py) holds hand-written edge cases and a few hundred seeded
mixtures of CJK, emoji sequences (including ZWJ joins no emoji list has, and emoji with a
combining mark), RTL text, combining marks and URLs of every kind glued to text; then every X
render of the sample site and of corpus-made stories is added, and each must be ``valid``. One
node process weighs the whole corpus. CI installs node and runs ``npm ci`` in tests/channels/js.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from channels.base import ChannelContext
from channels.text import count_weighted, x_valid
from channels.x import X
from publisher.manifest import load_manifest
from tests.channels.corpus import corpus
from tests.channels.storybook import links_for, make_story
from tests.channels.test_golden import MANIFEST, tracked_links
from tests.conftest import need

JS = Path(__file__).with_name("js")


@cache
def official(texts: tuple[str, ...]) -> list[dict[str, Any]]:
    """twitter-text's parseTweet for each text, in one node process."""
    node = shutil.which("node")
    need(node is not None, "node is not installed (CI installs nodejs from Debian)")
    need(
        (JS / "node_modules" / "twitter-text").is_dir(),
        f"twitter-text is not installed: run `npm ci` in {JS}",
    )
    done = subprocess.run(
        [str(node), str(JS / "weigh.js")],
        input=json.dumps(list(texts)),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def x_renders(tmp_path: Path) -> list[str]:
    channel = X({"name": "x"}, ChannelContext(var_dir=tmp_path, content_dir=tmp_path))
    stories = list(load_manifest(MANIFEST).stories)
    texts = [channel.render(s, None, tracked_links(s, n)).text for n, s in enumerate(stories)]
    for n, text in enumerate(corpus()[::3]):
        story = make_story(title=text[:40] or "t", summary=text, lang="zh" if n % 2 else "en")
        texts.append(channel.render(story, None, links_for(story)).text)
        long = dataclasses.replace(story, summary=text * 4, offer=text[:60] or None)
        texts.append(channel.render(long, None, links_for(long)).text)
    return texts


def test_the_corpus_is_large_enough() -> None:
    assert len(corpus()) >= 200


def test_weighted_length_and_validity_match_the_official_twitter_text() -> None:
    texts = tuple(corpus())
    theirs = official(texts)
    mismatches = [
        (text, ours, their)
        for text, their in zip(texts, theirs, strict=True)
        if (ours := (count_weighted(text), x_valid(text)))
        != (their["weightedLength"], their["valid"])
    ]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, first: {mismatches[:3]}"


def test_every_x_render_is_valid_by_the_official_twitter_text(tmp_path: Path) -> None:
    texts = tuple(x_renders(tmp_path))
    theirs = official(texts)
    invalid = [(t, r) for t, r in zip(texts, theirs, strict=True) if not r["valid"]]
    assert not invalid, f"{len(invalid)} of {len(texts)} renders invalid, first: {invalid[:2]}"
    assert all(count_weighted(t) == r["weightedLength"] for t, r in zip(texts, theirs, strict=True))


def test_a_site_url_twitter_text_does_not_recognise_counts_at_its_length() -> None:
    url = "http://127.0.0.1:8000/stories/xiamen-kitchen.html"
    (their,) = official((f"go {url}",))
    assert their["urls"] == []
    assert count_weighted(f"go {url}") == their["weightedLength"] == 3 + len(url)


def test_a_url_glued_to_chinese_ends_where_the_chinese_starts() -> None:
    text = "看这里https://example.com/x.html了解更多细节"
    (their,) = official((text,))
    assert their["urls"] == ["https://example.com/x.html"]
    assert count_weighted(text) == their["weightedLength"] == 3 * 2 + 23 + 6 * 2


def test_the_emoji_pattern_is_the_installed_twitter_text_one() -> None:
    """channels/twemoji.py is generated from the npm package CI installs: regenerate it with
    tests/channels/js/export_emoji.js when twitter-text's version changes."""
    official(("",))  # the same node and package checks
    done = subprocess.run(
        ["node", str(JS / "export_emoji.js")], capture_output=True, text=True, check=True
    )
    generated = Path(__file__).resolve().parents[2] / "channels" / "twemoji.py"
    assert done.stdout == generated.read_text(encoding="utf-8")
