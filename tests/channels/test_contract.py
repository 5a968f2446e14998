"""One contract for every registered adapter: render, publish, map failures, keep secrets.

Parametrised over ``channels.base.installed()``, so a newly registered channel is held to the
same contract; the networks are faked in ``networks.py`` with payloads shaped like the real APIs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from channels.base import Channel, ChannelContext, ChannelError, Links, Post, installed
from channels.text import graphemes, rule_counter
from publisher.model import Story
from publisher.settings import Secret
from publisher.tracking.optout import unsubscribe_link
from tests.channels.networks import (
    FAILURES,
    HTTP_NETWORKS,
    NOW,
    SECRET_FIELD,
    SECRETS,
    SIGNING,
    SUBSCRIBERS,
    Network,
    SmtpServer,
    email,
)
from tests.channels.storybook import key, links_for, make_story, write_jpeg
from tests.conftest import free_port

INSTALLED = installed()
TRACKED = "https://t.cedarandclay.example/go/"
FAMILY = "👩‍👩‍👧‍👦"


def corpus() -> dict[str, Story]:
    long_en = " ".join(
        ["The old tiles stayed, the light came in, and the family cooked together."] * 300
    )
    links = " ".join(f"https://cedarandclay.example/p/{i}" for i in range(30))
    return {
        "plain": make_story(),
        "cjk": make_story(
            lang="zh",
            title="厦门的厨房：把海景请进家里",
            summary="林女士想要光，我们拆掉了两面墙，保留了老花砖。" * 30,
            offer="十一月厨房设计咨询九折，凭码到店使用",
            variants={"A": "把海景请进厨房", "B": "两面墙换来一片海"},
        ),
        "emoji": make_story(
            title=f"Family kitchen {FAMILY}🇨🇳🏳️‍🌈",
            summary=(f"We cooked {FAMILY} together 👨🏽‍🍳 and laughed 😂🇩🇪. " * 60),
        ),
        "rtl": make_story(
            lang="ar",
            title="مطبخ يطل على البحر",
            summary="أرادت السيدة لين الضوء. قام فريقنا بإزالة جدارين. " * 40
            + "שלום, המטבח החדש מלא אור. " * 20,
            offer="خصم ١٠٪ على استشارة المطبخ",
        ),
        "long": make_story(summary=long_en, text=long_en, html="<p>" + long_en + "</p>" * 1),
        "many_links": make_story(overrides={n: f"All our kitchens: {links}" for n in INSTALLED}),
        "markup": make_story(
            html=(
                "<p>Before and after:</p><table><thead><tr><th>Room</th><th>Cost</th></tr></thead>"
                "<tbody><tr><td>Kitchen</td><td>¥48,000</td></tr></tbody></table>"
                '<pre><code class="language-python">print("hello &lt;world&gt;")</code></pre>'
                '<script>alert("x")</script><p style="color:red" onclick="x()">Call us & visit</p>'
                '<p><img src="https://elsewhere.example/tracker.gif" alt="external"></p>'
            ),
            summary="Tables & <code> & 5 < 6 > 4 should survive escaping.",
        ),
        "no_offer_no_image": make_story(offer=None, images=(), overrides={}),
    }


CORPUS = corpus()


def all_links(story: Story) -> Links:
    urls = {story.url: f"{TRACKED}s1"}
    for i in range(30):
        urls[f"https://cedarandclay.example/p/{i}"] = f"{TRACKED}p{i}"
    urls["https://cedarandclay.example/offer"] = f"{TRACKED}offer"
    return Links(urls=urls, offer_code=None if story.offer is None else "XM-7K2Q")


@pytest.fixture
def ctx(tmp_path: Path) -> ChannelContext:
    content = tmp_path / "content"
    write_jpeg(content / "images" / "kitchen.jpg")
    return ChannelContext(
        var_dir=tmp_path / "var",
        content_dir=content,
        now=lambda: NOW,
        optouts=lambda: {"optout@example.com"},
        unsubscribe_url=unsubscribe_link("https://t.cedarandclay.example", SIGNING),
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


def network_for(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Network:
    if name == "email":
        tmp_path.mkdir(parents=True, exist_ok=True)
        csv = tmp_path / "subscribers.csv"
        csv.write_text(SUBSCRIBERS, encoding="utf-8")
        return email(request.getfixturevalue("smtp"), csv)
    if name == "outbox":
        return Network(
            "outbox", {"token": Secret(SECRETS["outbox"])}, lambda r: None, lambda r, k: None
        )
    return HTTP_NETWORKS[name]()


def open_adapter(name: str, net: Network, ctx: ChannelContext) -> Channel:
    return INSTALLED[name]({**net.settings, "name": name}, ctx)


def limit_ok(channel: Channel, post: Post) -> None:
    rule = channel.length
    if rule.limit:
        count = rule_counter(rule.counting, rule.url_weight, rule.limit, rule.max_bytes)
        assert count(post.text) <= rule.limit, f"{count(post.text)} > {rule.limit}"
    if rule.max_bytes:
        assert len(post.text.encode("utf-8")) <= rule.max_bytes


# --------------------------------------------------------------------------- render


@pytest.mark.parametrize("story_name", sorted(CORPUS))
@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_render_fits_the_limit_and_keeps_link_and_offer_code(
    name: str, story_name: str, tmp_path: Path, ctx: ChannelContext, request: pytest.FixtureRequest
) -> None:
    story = CORPUS[story_name]
    channel = open_adapter(name, network_for(name, tmp_path, request), ctx)
    links = all_links(story)
    with responses.RequestsMock():  # render must not touch the network
        post = channel.render(story, "B", links)
    limit_ok(channel, post)
    assert f"{TRACKED}s1" in post.text
    if links.offer_code:
        assert links.offer_code in post.text
    json.dumps(post.payload, ensure_ascii=False)
    assert not ctx.var_dir.exists(), "render wrote files"


@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_render_never_splits_a_grapheme_cluster(
    name: str, tmp_path: Path, ctx: ChannelContext, request: pytest.FixtureRequest
) -> None:
    story = CORPUS["emoji"]
    channel = open_adapter(name, network_for(name, tmp_path, request), ctx)
    post = channel.render(story, None, all_links(story))
    source = story.title + story.summary + (story.offer or "") + "".join(story.variants.values())
    source += "…·"
    allowed = set(graphemes(source))
    for cluster in graphemes(post.text):
        assert cluster in allowed or cluster.isascii(), cluster


@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_render_is_pure_and_repeatable(
    name: str, tmp_path: Path, ctx: ChannelContext, request: pytest.FixtureRequest
) -> None:
    story = CORPUS["cjk"]
    channel = open_adapter(name, network_for(name, tmp_path, request), ctx)
    assert channel.render(story, "A", all_links(story)) == channel.render(
        story, "A", all_links(story)
    )


@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_variant_headline_is_used(
    name: str, tmp_path: Path, ctx: ChannelContext, request: pytest.FixtureRequest
) -> None:
    story = make_story(variants={"A": "Light, at last", "B": "Two walls out, the sea in"})
    channel = open_adapter(name, network_for(name, tmp_path, request), ctx)
    post = channel.render(story, "B", links_for(story))
    assert "Two walls out, the sea in" in post.text
    assert story.title not in post.text


# --------------------------------------------------------------------------- publish


PUBLISHERS = sorted(INSTALLED)
FAILING = [
    (n, k)
    for n in PUBLISHERS
    if n != "outbox"
    for k in FAILURES
    if not (n == "email" and k == "timeout")
]


@pytest.mark.parametrize("name", PUBLISHERS)
def test_publish_succeeds_with_a_receipt(
    name: str, tmp_path: Path, ctx: ChannelContext, request: pytest.FixtureRequest
) -> None:
    net = network_for(name, tmp_path, request)
    channel = open_adapter(name, net, ctx)
    story = CORPUS["plain"]
    post = channel.render(story, None, links_for(story))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        net.succeed(rsps)
        receipt = channel.publish(post, key())
    assert receipt.remote_id


@pytest.mark.parametrize(("name", "kind"), FAILING)
def test_each_failure_maps_to_its_class(
    name: str, kind: str, tmp_path: Path, ctx: ChannelContext, request: pytest.FixtureRequest
) -> None:
    net = network_for(name, tmp_path, request)
    channel = open_adapter(name, net, ctx)
    story = CORPUS["plain"]
    post = channel.render(story, None, links_for(story))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        net.fail(rsps, kind)
        with pytest.raises(ChannelError) as caught:
            channel.publish(post, key())
    assert type(caught.value) is net.expected[kind], str(caught.value)
    assert caught.value.channel == name
    if kind in net.until:
        assert getattr(caught.value, "retry_at", None) == net.until[kind]
    if kind in ("server", "connect", "rate"):
        assert getattr(caught.value, "retry_at", None) is not None
    if kind in net.message:
        assert net.message[kind] in str(caught.value)


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("name", PUBLISHERS)
def test_secrets_never_leak_into_logs_errors_reprs_or_files(
    name: str,
    tmp_path: Path,
    ctx: ChannelContext,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = SECRETS[name]
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)
    story = CORPUS["plain"]
    for kind in ("ok", *FAILURES):
        if kind != "ok" and (name, kind) not in FAILING:
            continue
        net = network_for(name, tmp_path / kind, request)
        channel = open_adapter(name, net, dataclasses.replace(ctx, var_dir=tmp_path / kind / "var"))
        seen += [repr(channel), str(channel.settings.get(SECRET_FIELD[name]))]
        post = channel.render(story, None, links_for(story))
        seen.append(repr(post))
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            (net.succeed(rsps) if kind == "ok" else net.fail(rsps, kind))
            try:
                channel.publish(post, key(f"k-{kind}"))
            except ChannelError as exc:
                seen += [str(exc), repr(exc), repr(exc.args), exc.hint or ""]
        if name == "email" and kind == "connect":
            break  # the server is gone now
    seen.append(caplog.text)
    seen += [
        p.read_text("utf-8", "replace")
        for p in tmp_path.rglob("*")
        if p.is_file() and "var" in p.parts
    ]
    leaks = [s for s in seen if secret in s]
    assert not leaks, leaks[0][:300]


@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_the_editors_text_for_a_channel_is_used(
    name: str, tmp_path: Path, ctx: ChannelContext, request: pytest.FixtureRequest
) -> None:
    story = make_story(overrides={name: "Written by the editor for this network only."})
    channel = open_adapter(name, network_for(name, tmp_path, request), ctx)
    post = channel.render(story, None, links_for(story))
    assert "Written by the editor for this network only." in post.text
    assert f"{TRACKED}s1" in post.text
