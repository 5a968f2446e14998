from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import responses

from channels.base import ChannelContext
from channels.text import count_hanzi, count_weibo
from channels.weibo import Weibo
from publisher.adapters import open_channel
from publisher.settings import Secret
from tests.channels.networks import SECRETS, WEIBO
from tests.channels.storybook import key, links_for, make_settings, make_story

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path: Path) -> ChannelContext:
    return ChannelContext(
        var_dir=tmp_path / "var", content_dir=tmp_path / "content", now=lambda: NOW
    )


def test_tracked_link_off_the_safe_domain_is_a_settings_problem() -> None:
    problems = Weibo.check_settings(
        {"safe_domain": "cedarandclay.cn"}, "https://t.cedarandclay.example"
    )
    assert len(problems) == 1
    assert "t.cedarandclay.example" in problems[0] and "cedarandclay.cn" in problems[0]


def test_tracked_link_on_the_safe_domain_or_below_is_fine() -> None:
    assert (
        Weibo.check_settings(
            {"safe_domain": "cedarandclay.example"}, "https://t.cedarandclay.example"
        )
        == []
    )
    assert (
        Weibo.check_settings(
            {"safe_domain": "t.cedarandclay.example"}, "https://t.cedarandclay.example/"
        )
        == []
    )


def test_other_channels_report_no_problems_by_default(tmp_path: Path) -> None:
    from channels.mastodon import Mastodon

    assert Mastodon.check_settings({}, "https://t.example") == []


def test_text_fits_140_hanzi_with_link_and_code(ctx: ChannelContext) -> None:
    story = make_story(
        lang="zh", title="厦门的厨房", summary="林女士想要光，我们拆掉了两面墙。" * 30, images=()
    )
    post = Weibo({"safe_domain": "cedarandclay.example"}, ctx).render(story, None, links_for(story))
    assert count_hanzi(post.text) <= 140
    assert "XM-7K2Q" in post.text and "https://t.cedarandclay.example/go/s1" in post.text


def test_share_sends_the_status_with_the_safe_domain_link(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = Weibo(
        {"access_token": Secret(SECRETS["weibo"]), "safe_domain": "cedarandclay.example"}, ctx
    )
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        sent = rsps.post(WEIBO, json={"id": 51, "idstr": "5100000000000001", "text": "x"})
        receipt = ch.publish(post, key())
    form = parse_qs(sent.calls[0].request.body)
    assert form["status"] == [post.text]
    assert receipt.url == "https://m.weibo.cn/status/5100000000000001"


def test_open_channel_gives_weibo_the_tracking_base_url(
    tmp_path: Path, ctx: ChannelContext
) -> None:
    settings = make_settings(tmp_path, {"weibo": {"safe_domain": "cedarandclay.example"}})
    ch = open_channel("weibo", settings, ctx)
    assert ch.settings["tracking_base_url"] == "https://t.cedarandclay.example"


def test_topics_stay_in_pairs_and_a_lone_hash_is_made_full_width(ctx: ChannelContext) -> None:
    story = make_story(
        lang="zh",
        title="#老房子# 防潮",
        summary="回南天 #厦门 的墙会出汗。" + "林女士想要光，我们拆掉了两面墙。" * 5 + "#装修灵感#",
        images=(),
    )
    text = (
        Weibo({"safe_domain": "cedarandclay.example"}, ctx)
        .render(story, None, links_for(story))
        .text
    )
    assert text.startswith("#老房子# 防潮")
    assert "＃厦门" in text
    assert text.count("#") % 2 == 0  # the cut dropped the last topic whole, not half of it
    assert count_weibo(text) <= 140


def test_check_reports_an_unpaired_hash() -> None:
    problems = Weibo.check_story({"title": "#老房子 防潮", "summary": "#a# ok"}, {"name": "weibo"})
    assert [p[0] for p in problems] == ["title"]
    assert "unpaired '#'" in problems[0][1]
    assert Weibo.check_story({"weibo-text": "#话题# 好"}, {"name": "weibo"}) == []
