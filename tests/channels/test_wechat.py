from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from networks import PUBLISHED, SECRETS, WX
from storybook import SITE, key, links_for, make_story, write_jpeg

from channels.base import AuthProblem, ChannelContext, ContentRejected, RetryLater
from channels.wechat import WeChat, next_quota_day, sanitize
from publisher.settings import Secret

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
TOKEN = {"access_token": "79_ACCESS_TOKEN_xyz", "expires_in": 7200}
SUBMITTED = {"errcode": 0, "errmsg": "ok", "publish_id": "100000001", "msg_data_id": 2247483650}


@pytest.fixture
def ctx(tmp_path: Path) -> ChannelContext:
    write_jpeg(tmp_path / "content" / "images" / "kitchen.jpg", (800, 600), noise=True)
    return ChannelContext(
        var_dir=tmp_path / "var", content_dir=tmp_path / "content", now=lambda: NOW
    )


def channel(ctx: ChannelContext) -> WeChat:
    settings = {
        "appid": "wx00",
        "secret": Secret(SECRETS["wechat"]),
        "author": "松陶家居",
        "poll_interval": 0,
    }
    return WeChat(settings, ctx)


def uploads(rsps: responses.RequestsMock) -> tuple[responses.BaseResponse, responses.BaseResponse]:
    thumb = rsps.post(
        f"{WX}/material/add_material", json={"media_id": "THUMB", "url": "http://mmbiz/t"}
    )
    img = rsps.post(f"{WX}/media/uploadimg", json={"url": "http://mmbiz.qpic.cn/kitchen/0"})
    return thumb, img


def test_sanitize_keeps_wechat_subset_with_inline_styles() -> None:
    html = (
        '<p class="lead" onclick="x()" style="position:fixed">Hi <script>alert(1)</script></p>'
        "<table><tr><td>Kitchen</td></tr></table><pre><code>a &lt; b</code></pre>"
        '<iframe src="https://evil"></iframe><a href="javascript:alert(1)">x</a>'
    )
    clean = sanitize(html)
    assert "script" not in clean and "iframe" not in clean and "javascript" not in clean
    assert "class=" not in clean and "onclick" not in clean and "position:fixed" not in clean
    assert '<p style="margin:0 0 1em;line-height:1.75;">Hi </p>' in clean
    assert '<td style="border:1px solid #ddd;padding:4px 6px;">Kitchen</td>' in clean
    assert "a &lt; b" in clean


def test_render_puts_the_tracked_link_in_content_source_url_and_fits_limits(
    ctx: ChannelContext,
) -> None:
    story = make_story(
        title="厦门的厨房：把海景请进家里，一个关于光和老花砖的长长的故事标题", summary="摘要" * 100
    )
    post = channel(ctx).render(story, None, links_for(story), {})
    article = post.payload["article"]
    assert article["content_source_url"] == "https://t.cedarandclay.example/go/s1"
    assert len(article["title"]) <= 32 and len(article["digest"]) <= 128
    assert len(article["author"]) <= 16
    assert len(article["content"]) < 20_000
    assert "XM-7K2Q" in article["content"]


def test_publish_uploads_cover_and_images_then_drafts_submits_and_polls(
    ctx: ChannelContext,
) -> None:
    story = make_story()
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story), {})
    with responses.RequestsMock() as rsps:
        token = rsps.post(f"{WX}/stable_token", json=TOKEN)
        thumb, img = uploads(rsps)
        draft = rsps.post(f"{WX}/draft/add", json={"media_id": "DRAFT"})
        submit = rsps.post(f"{WX}/freepublish/submit", json=SUBMITTED)
        rsps.post(f"{WX}/freepublish/get", json={**PUBLISHED, "publish_status": 1})
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        receipt = ch.publish(post, key())
    assert json.loads(token.calls[0].request.body)["force_refresh"] is False
    assert "type=thumb" in thumb.calls[0].request.url
    cover = thumb.calls[0].request.body
    assert b"image/jpeg" in cover and len(cover) < 64 * 1024 + 500
    body = draft.calls[0].request.body
    assert "松陶家居".encode() in body and b"\\u" not in body  # raw UTF-8, not escapes
    article = json.loads(body)["articles"][0]
    assert article["thumb_media_id"] == "THUMB"
    assert "http://mmbiz.qpic.cn/kitchen/0" in article["content"]
    assert f"{SITE}/images/kitchen.jpg" not in article["content"]
    assert "access_token=79_ACCESS_TOKEN_xyz" in draft.calls[0].request.url
    assert json.loads(submit.calls[0].request.body) == {"media_id": "DRAFT"}
    assert receipt.url == PUBLISHED["article_detail"]["item"][0]["article_url"]
    assert receipt.extra["publish_id"] == "100000001"
    assert img.call_count == 1


def test_token_is_cached_in_a_private_file_shared_by_processes(ctx: ChannelContext) -> None:
    with responses.RequestsMock() as rsps:
        token = rsps.post(f"{WX}/stable_token", json=TOKEN)
        assert channel(ctx).access_token() == "79_ACCESS_TOKEN_xyz"
        assert channel(ctx).access_token() == "79_ACCESS_TOKEN_xyz"  # another process
    assert token.call_count == 1
    cache = next((ctx.var_dir / "wechat").glob("*.token"))
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert SECRETS["wechat"] not in cache.read_text()


def test_invalid_token_is_refetched_once(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = WeChat({**channel(ctx).settings, "cover": "images/kitchen.jpg"}, ctx)
    post = ch.render(story, None, links_for(story), {})
    with responses.RequestsMock() as rsps:
        token = rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(
            f"{WX}/material/add_material", json={"errcode": 40001, "errmsg": "invalid credential"}
        )
        rsps.post(f"{WX}/material/add_material", json={"media_id": "THUMB"})
        rsps.post(f"{WX}/draft/add", json={"media_id": "DRAFT"})
        rsps.post(f"{WX}/freepublish/submit", json=SUBMITTED)
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        ch.publish(post, key())
    assert token.call_count == 2


def test_token_still_invalid_after_refetch_is_an_auth_problem(ctx: ChannelContext) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(f"{WX}/draft/add", json={"errcode": 42001, "errmsg": "access_token expired"})
        with pytest.raises(AuthProblem):
            channel(ctx)._call("draft/add", "draft", {"articles": []})


def test_daily_quota_means_retry_tomorrow_beijing_time() -> None:
    assert next_quota_day(NOW) == datetime(2026, 11, 20, 16, 5, tzinfo=UTC)


def test_account_without_the_api_gets_a_clear_message(ctx: ChannelContext) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(f"{WX}/draft/add", json={"errcode": 48001, "errmsg": "api unauthorized"})
        with pytest.raises(AuthProblem, match="verified Official Account"):
            channel(ctx)._call("draft/add", "draft", {"articles": []})


def test_a_retry_resumes_after_submit_without_a_second_draft(ctx: ChannelContext) -> None:
    story = make_story()
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story), {})
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        uploads(rsps)
        draft = rsps.post(f"{WX}/draft/add", json={"media_id": "DRAFT"})
        rsps.post(f"{WX}/freepublish/submit", json={"errcode": -1, "errmsg": "system error"})
        with pytest.raises(RetryLater):
            ch.publish(post, key())
        rsps.replace(responses.POST, f"{WX}/freepublish/submit", json=SUBMITTED)
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        receipt = ch.publish(post, key())
    assert draft.call_count == 1
    assert receipt.extra["media_id"] == "DRAFT"


@pytest.mark.parametrize("status", [2, 3, 4, 5, 6])
def test_failed_publish_status_is_a_rejection(ctx: ChannelContext, status: int) -> None:
    story = make_story()
    ch = channel(ctx)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        uploads(rsps)
        rsps.post(f"{WX}/draft/add", json={"media_id": "DRAFT"})
        rsps.post(f"{WX}/freepublish/submit", json=SUBMITTED)
        rsps.post(f"{WX}/freepublish/get", json={"publish_id": "1", "publish_status": status})
        with pytest.raises(ContentRejected, match=f"\\({status}\\)"):
            ch.publish(ch.render(story, None, links_for(story), {}), key())


def test_lookup_finds_a_published_article_by_its_publish_id(ctx: ChannelContext) -> None:
    ch = channel(ctx)
    assert ch.lookup(key()) is None
    ch._record(key(), media_id="DRAFT", publish_id="100000001")
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        found = ch.lookup(key())
    assert found is not None and found.url == PUBLISHED["article_detail"]["item"][0]["article_url"]
