from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses

from channels.base import ChannelContext, ContentRejected, RateLimited
from channels.text import count_weighted
from channels.x import X
from publisher.settings import Secret
from tests.channels.networks import SECRETS, XAPI
from tests.channels.storybook import key, links_for, make_story, write_jpeg

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)


@pytest.fixture
def ctx(tmp_path: Path) -> ChannelContext:
    write_jpeg(tmp_path / "content" / "images" / "kitchen.jpg")
    return ChannelContext(
        var_dir=tmp_path / "var", content_dir=tmp_path / "content", now=lambda: NOW
    )


def channel(ctx: ChannelContext) -> X:
    return X({"access_token": Secret(SECRETS["x"]), "username": "cedarandclay"}, ctx)


def test_cjk_post_fits_280_weighted_with_link_and_code(ctx: ChannelContext) -> None:
    story = make_story(
        lang="zh", title="厦门的厨房", summary="林女士想要光，我们拆掉了两面墙。" * 20
    )
    post = channel(ctx).render(story, None, links_for(story))
    assert count_weighted(post.text) <= 280
    assert "XM-7K2Q" in post.text
    assert post.text.endswith("https://t.cedarandclay.example/go/s1")
    assert len(post.text) < 200  # CJK weighs 2: far fewer characters than 280


def test_post_sends_text_and_uploaded_media_ids(ctx: ChannelContext) -> None:
    story = make_story()
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        rsps.post(f"{XAPI}/media/upload", json={"data": {"id": "1880028106020515840"}})
        sent = rsps.post(f"{XAPI}/tweets", json={"data": {"id": "1445", "text": "x"}}, status=201)
        receipt = ch.publish(post, key())
    body = json.loads(sent.calls[0].request.body)
    assert body == {"text": post.text, "media": {"media_ids": ["1880028106020515840"]}}
    assert receipt.url == "https://x.com/cedarandclay/status/1445"


def test_duplicate_content_403_is_a_rejection_not_an_auth_problem(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    problem = {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }
    with responses.RequestsMock() as rsps:
        rsps.post(f"{XAPI}/tweets", json=problem, status=403)
        with pytest.raises(ContentRejected, match="duplicate content"):
            ch.publish(ch.render(story, None, links_for(story)), key())


def test_429_waits_until_x_rate_limit_reset(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    with responses.RequestsMock() as rsps:
        rsps.post(
            f"{XAPI}/tweets",
            json={"title": "Too Many Requests", "status": 429},
            status=429,
            headers={"x-rate-limit-reset": "1763605800"},
        )
        with pytest.raises(RateLimited) as caught:
            ch.publish(ch.render(story, None, links_for(story)), key())
    assert caught.value.until == datetime.fromtimestamp(1763605800, tz=UTC)


def test_metrics_read_public_metrics(ctx: ChannelContext) -> None:
    m = {
        "like_count": 9,
        "retweet_count": 2,
        "quote_count": 1,
        "reply_count": 4,
        "impression_count": 300,
    }
    with responses.RequestsMock() as rsps:
        rsps.get(f"{XAPI}/tweets/1445", json={"data": {"id": "1445", "public_metrics": m}})
        from channels.base import Receipt

        got = channel(ctx).metrics(Receipt("1445"))
    assert got is not None and (got.likes, got.reposts, got.replies, got.views) == (9, 3, 4, 300)
