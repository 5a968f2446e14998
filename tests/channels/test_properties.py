"""Property tests: random stories mixing CJK, emoji sequences, RTL, combining marks and URLs glued
to text, rendered by every adapter. Each render must be within the network's limit counted by
an independent rule written here (not Storyloop's counters), keep the tracked link and the offer
code, and never split a grapheme cluster. X's renders are weighed by the official twitter-text
(one node process for all of them)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.base import Channel, ChannelContext, Links, Post, installed
from publisher.model import Story
from tests.channels.corpus import CJK, EMOJI, LATIN, MARKS, PUNCT, RTL
from tests.channels.storybook import make_story
from tests.channels.test_golden import SETTINGS
from tests.channels.test_x_conformance import official

TRACKED = "https://t.cedarandclay.example/go/Ab3dE5gH7j"
CODE = "SL-7K2QX-4"
GLUED_URL = "https://cedarandclay.example/stories/glued.html"  # a TLD twitter-text does not know
FAST = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

pieces = st.sampled_from([*CJK, *EMOJI, *RTL, *MARKS, *LATIN, *PUNCT, " ", "\n", "#话题#", "#"])
words = st.lists(pieces, min_size=0, max_size=40).map("".join)
glued = st.builds(lambda a, b: f"{a}{GLUED_URL}{b}", st.sampled_from(CJK + LATIN), words)
emoji_run = st.lists(st.sampled_from(EMOJI), min_size=1, max_size=8).map("".join)
summaries = st.builds(
    lambda parts, times: "".join(parts) * times,
    st.lists(st.one_of(words, glued, emoji_run), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=30),
)


def clusters(text: str) -> list[str]:
    return list(regex.findall(r"\X", text))


def adapter(name: str, tmp_path: Path) -> Channel:
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=tmp_path / "content")
    return installed()[name]({"name": name, **SETTINGS.get(name, {})}, ctx)


def story_of(title: str, summary: str, lang: str, offer: bool) -> Story:
    return make_story(
        title=title or "t",
        summary=summary,
        lang=lang,
        offer=f"{summary[:30]} 9折" if offer else None,
        variants={},
    )


def links_of(story: Story) -> Links:
    return Links(urls={story.url: TRACKED, GLUED_URL: TRACKED + "x"}, offer_code=CODE)


# ------------------------------------------------------------------ independent limits


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def weibo_halves(text: str) -> int:
    return sum(1 if ord(c) < 128 else 2 * (utf16(c)) for c in text)


def within_limits(name: str, post: Post) -> list[str]:
    """What is over the network's limit, by rules written from its documentation."""
    text, p = post.text, post.payload
    over = []
    if name == "mastodon" and len(clusters(p["status"])) > 500:
        over.append("mastodon: over 500 graphemes")  # .example URLs get no 23-concession
    if name == "bluesky":
        record = p["record"]
        if len(clusters(record["text"])) > 300 or len(record["text"].encode()) > 3000:
            over.append("bluesky: over 300 graphemes or 3000 bytes")
    if name == "telegram":
        limit = 1024 if p["method"] == "sendPhoto" else 4096
        if utf16(text) > limit:
            over.append(f"telegram: over {limit} UTF-16 units")
    if name == "weibo" and math.ceil(weibo_halves(p["status"]) / 2) > 140:
        over.append("weibo: over 140")
    if name == "wechat":
        article = p["article"]
        if len(article["title"]) > 32 or len(article["digest"]) > 128:
            over.append("wechat: title or digest too long")
        if len(article["content"]) >= 20_000:
            over.append("wechat: content too long")
    return over


def sent_text(name: str, post: Post) -> str:
    p = post.payload
    text: str = {
        "mastodon": lambda: p["status"],
        "bluesky": lambda: p["record"]["text"],
        "weibo": lambda: p["status"],
        "x": lambda: p["text"],
    }.get(name, lambda: post.text)()
    return text


def check_render(name: str, channel: Channel, story: Story) -> Post:
    post = channel.render(story, None, links_of(story))
    assert not within_limits(name, post), (within_limits(name, post), story.summary)
    text = sent_text(name, post)
    if name != "wechat":  # WeChat carries the tracked link as content_source_url
        assert TRACKED in text, text
    assert CODE in text or CODE in str(post.payload), text
    labels = " · 优惠码: Code: 阅读全文 Ganze Geschichte lesen Read the whole story" + CODE
    shown = story.title + story.summary + (story.offer or "") + story.html + labels
    allowed = set(clusters(shown)) | {
        "…",
        "\n",
        " ",
        "＃",
    }
    body = text.split(TRACKED)[0]
    split = [c for c in clusters(body) if c not in allowed and not c.isascii()]
    assert not split, f"graphemes not in the story: {split!r}"
    if name == "bluesky":
        raw = post.payload["record"]["text"].encode()
        for facet in post.payload["record"]["facets"]:
            start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
            assert raw[start:end].decode() == facet["features"][0]["uri"]
    if name == "weibo":
        assert "#" not in regex.sub(r"#[^#\n]{1,64}#", "", text.replace(TRACKED, "")), text
    return post


NAMES = sorted(n for n in installed() if n != "x")


@pytest.mark.parametrize("name", NAMES)
def test_every_render_fits_keeps_link_and_code_and_graphemes(name: str, tmp_path: Path) -> None:
    channel = adapter(name, tmp_path)

    @FAST
    @given(
        title=words,
        summary=summaries,
        lang=st.sampled_from(["zh", "en", "de"]),
        offer=st.booleans(),
    )
    def run(title: str, summary: str, lang: str, offer: bool) -> None:
        check_render(name, channel, story_of(title, summary, lang, offer))

    run()


def test_every_x_render_is_valid_by_the_official_twitter_text(tmp_path: Path) -> None:
    channel = adapter("x", tmp_path)
    texts: list[str] = []

    @FAST
    @given(title=words, summary=summaries, offer=st.booleans())
    def run(title: str, summary: str, offer: bool) -> None:
        texts.append(check_render("x", channel, story_of(title, summary, "zh", offer)).text)

    run()
    theirs = official(tuple(texts))
    invalid = [(t, r) for t, r in zip(texts, theirs, strict=True) if not r["valid"]]
    assert not invalid, invalid[:2]


LIMITS: dict[str, Any] = {"x": 280, "mastodon": 500, "bluesky": 300, "weibo": 140}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_text_at_the_limit_plus_or_minus_one_fits(name: str, tmp_path: Path) -> None:
    """Summaries whose post lands on every length around the limit, by one character steps."""
    channel = adapter(name, tmp_path)
    texts = []
    limit = LIMITS[name]
    for filler in ("a", "汉", "👩\u200d👩\u200d👧"):
        for n in range(max(limit - 90, 1), limit + 10):
            story = story_of("Title", filler * n, "zh", offer=True)
            texts.append(check_render(name, channel, story).text)
    if name == "x":
        assert all(r["valid"] for r in official(tuple(texts)))


def test_a_story_long_enough_to_cut_is_cut_with_an_ellipsis(tmp_path: Path) -> None:
    story = dataclasses.replace(story_of("T", "林女士想要光。" * 200, "zh", True))
    post = check_render("weibo", adapter("weibo", tmp_path), story)
    assert "…" in post.text
