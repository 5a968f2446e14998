from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses

from channels.base import (
    AuthProblem,
    ChannelContext,
    ContentRejected,
    Metrics,
    Receipt,
    RetryLater,
)
from channels.wechat import WeChat, next_quota_day, sanitize, statistics_msgid
from publisher.settings import Secret
from tests.channels.networks import PUBLISHED, SECRETS, WX
from tests.channels.storybook import SITE, database_state, key, links_for, make_story, write_jpeg

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
TOKEN = {"access_token": "79_ACCESS_TOKEN_xyz", "expires_in": 7200}
SUBMITTED = {"errcode": 0, "errmsg": "ok", "publish_id": "100000001", "msg_data_id": 2247483650}
DATACUBE = "https://api.weixin.qq.com/datacube/getarticletotaldetail"


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
    post = channel(ctx).render(story, None, links_for(story))
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
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        token = rsps.post(f"{WX}/stable_token", json=TOKEN)
        thumb, img = uploads(rsps)
        draft = rsps.post(f"{WX}/draft/add", json={"media_id": "DRAFT"})
        submit = rsps.post(f"{WX}/freepublish/submit", json=SUBMITTED)
        rsps.post(f"{WX}/freepublish/get", json={**PUBLISHED, "publish_status": 1})
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        receipt = ch.publish(post, key())
    assert json.loads(token.calls[0].request.body)["force_refresh"] is False
    thumb_request = thumb.calls[0].request
    assert thumb_request.url is not None and "type=thumb" in thumb_request.url
    cover = thumb_request.body
    assert isinstance(cover, bytes) and b"image/jpeg" in cover and len(cover) < 64 * 1024 + 500
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


def test_token_is_cached_in_the_database_shared_by_processes(
    ctx: ChannelContext, tmp_path: Path
) -> None:
    ctx = dataclasses.replace(ctx, state=database_state(tmp_path / "storyloop.db"))
    with responses.RequestsMock() as rsps:
        token = rsps.post(f"{WX}/stable_token", json=TOKEN)
        assert channel(ctx).access_token() == "79_ACCESS_TOKEN_xyz"
        assert channel(ctx).access_token() == "79_ACCESS_TOKEN_xyz"  # another process
    assert token.call_count == 1
    kept = ctx.state.get("wechat", "token/wx00")
    assert kept is not None
    assert kept["access_token"] == "79_ACCESS_TOKEN_xyz"
    assert SECRETS["wechat"] not in json.dumps(kept)
    assert not ctx.var_dir.exists()  # nothing under var/: the state is the database's


def test_invalid_token_is_refetched_once(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = WeChat({**channel(ctx).settings, "cover": "images/kitchen.jpg"}, ctx)
    post = ch.render(story, None, links_for(story))
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
            channel(ctx)._call("cgi-bin/draft/add", "draft", {"articles": []})


def test_daily_quota_means_retry_tomorrow_beijing_time() -> None:
    assert next_quota_day(NOW) == datetime(2026, 11, 20, 16, 5, tzinfo=UTC)


def test_account_without_the_api_gets_a_clear_message(ctx: ChannelContext) -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(f"{WX}/draft/add", json={"errcode": 48001, "errmsg": "api unauthorized"})
        with pytest.raises(AuthProblem, match="verified Official Account"):
            channel(ctx)._call("cgi-bin/draft/add", "draft", {"articles": []})


def test_a_retry_resumes_after_submit_without_a_second_draft(ctx: ChannelContext) -> None:
    story = make_story()
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
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
            ch.publish(ch.render(story, None, links_for(story)), key())


def test_lookup_finds_a_published_article_by_its_publish_id(ctx: ChannelContext) -> None:
    ch = channel(ctx)
    assert ch.lookup(key()) is None
    ch._record(key(), media_id="DRAFT", publish_id="100000001")
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        found = ch.lookup(key())
    assert found is not None and found.url == PUBLISHED["article_detail"]["item"][0]["article_url"]


# --------------------------------------------------------------------------- metrics
# NOW is 2026-11-20 09:30 in Beijing: the article goes out that day.


def days_later(ctx: ChannelContext, days: int) -> WeChat:
    """The channel as the periodic metrics job opens it, ``days`` after publishing."""
    return channel(
        ChannelContext(
            var_dir=ctx.var_dir,
            content_dir=ctx.content_dir,
            now=lambda: NOW + timedelta(days=days),
            state=ctx.state,
        )
    )


def published(ctx: ChannelContext) -> Receipt:
    """A published article's receipt, as the ledger keeps it and hands it to metrics()."""
    ch = channel(ctx)
    story = make_story()
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        uploads(rsps)
        rsps.post(f"{WX}/draft/add", json={"media_id": "DRAFT"})
        rsps.post(f"{WX}/freepublish/submit", json=SUBMITTED)
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        return ch.publish(ch.render(story, None, links_for(story)), key())


def day_row(
    stat_date: str, reads: int, shares: int, hearts: int, thumbs: int, comments: int
) -> dict[str, Any]:
    """One detail_list row: totals from the publish day up to stat_date."""
    return {
        "stat_date": stat_date,
        "read_user": reads,
        "read_user_source": [
            {"user_count": reads, "scene_desc": "全部"},
            {"user_count": reads // 2, "scene_desc": "公众号消息"},
        ],
        "share_user": shares,
        "zaikan_user": hearts,
        "like_user": thumbs,
        "comment_count": comments,
        "collection_user": 3,
        "praise_money": 0,
        "read_subscribe_user": 2,
        "read_delivery_rate": 0.0271,
        "read_finish_rate": 0.6304,
        "read_avg_activetime": 1.06,
        "read_jump_position": [{"position": 1, "rate": 0.18}, {"position": 5, "rate": 0.41}],
    }


def statistics(
    *rows: dict[str, Any], msgid: str = "2247483650_1", is_delay: bool = False
) -> dict[str, Any]:
    """A getarticletotaldetail answer for 2026-11-20: another article of the account, then ours."""
    other = {
        "ref_date": "2026-11-20",
        "msgid": "2247483649_1",
        "publish_type": 0,
        "title": "上周的故事",
        "content_url": "https://mp.weixin.qq.com/s?__biz=MzA4&mid=2247483649&idx=1&sn=9f",
        "detail_list": [day_row("2026-11-20", 500, 9, 4, 7, 1)],
    }
    ours = {
        "ref_date": "2026-11-20",
        "msgid": msgid,
        "publish_type": 1,
        "title": "厦门的厨房",
        "content_url": "https://mp.weixin.qq.com/s?__biz=MzA4&mid=2247483650&idx=1&sn=3c",
        "detail_list": list(rows),
    }
    return {"list": [other, ours], "is_delay": is_delay}


def statistics_api(rsps: responses.RequestsMock, answer: dict[str, Any]) -> responses.BaseResponse:
    rsps.post(f"{WX}/stable_token", json=TOKEN)  # the cached token expired meanwhile
    return rsps.add(responses.POST, DATACUBE, json=answer)


THREE_DAYS = statistics(
    day_row("2026-11-20", 120, 6, 2, 9, 1),
    day_row("2026-11-21", 180, 10, 3, 14, 2),
    day_row("2026-11-22", 200, 11, 3, 15, 4),
)


def test_metrics_are_the_latest_totals_asked_for_the_publish_day(ctx: ChannelContext) -> None:
    receipt = published(ctx)
    with responses.RequestsMock() as rsps:
        stats = statistics_api(rsps, THREE_DAYS)
        figures = days_later(ctx, 3).metrics(receipt)
    request = stats.calls[0].request
    assert request.body is not None and request.url is not None
    assert json.loads(request.body) == {"begin_date": "2026-11-20", "end_date": "2026-11-20"}
    assert "access_token=79_ACCESS_TOKEN_xyz" in request.url
    assert figures == Metrics(views=200, likes=18, reposts=11, replies=4, clicks=None)


def test_an_article_published_today_has_no_figures_to_ask_for(ctx: ChannelContext) -> None:
    receipt = published(ctx)
    with responses.RequestsMock():  # any request would fail the test
        assert channel(ctx).metrics(receipt) is None


def test_an_article_not_in_the_statistics_yet_has_no_figures(ctx: ChannelContext) -> None:
    receipt = published(ctx)
    with responses.RequestsMock() as rsps:
        stats = statistics_api(rsps, {"list": [], "is_delay": False})
        assert days_later(ctx, 1).metrics(receipt) is None
        rsps.replace(responses.POST, DATACUBE, json=statistics())  # listed, no rows yet
        assert days_later(ctx, 1).metrics(receipt) is None
    assert stats.call_count == 1


def test_delayed_statistics_are_used_and_asked_again(ctx: ChannelContext) -> None:
    receipt = published(ctx)
    delayed = statistics(day_row("2026-11-20", 120, 6, 2, 9, 1), is_delay=True)
    with responses.RequestsMock() as rsps:
        statistics_api(rsps, delayed)
        assert days_later(ctx, 2).metrics(receipt) == Metrics(
            likes=11, reposts=6, replies=1, views=120
        )
        rsps.replace(responses.POST, DATACUBE, json=THREE_DAYS)  # asked again the same day
        assert days_later(ctx, 2).metrics(receipt) == Metrics(
            likes=18, reposts=11, replies=4, views=200
        )


def test_figures_are_asked_once_a_day_and_never_after_thirty_days(ctx: ChannelContext) -> None:
    receipt = published(ctx)
    with responses.RequestsMock() as rsps:
        stats = statistics_api(rsps, THREE_DAYS)
        assert days_later(ctx, 3).metrics(receipt) is not None
        assert days_later(ctx, 3).metrics(receipt) is None  # nothing new until tomorrow
        assert days_later(ctx, 4).metrics(receipt) is not None
        assert days_later(ctx, 40).metrics(receipt) is not None  # the final figures
        assert days_later(ctx, 41).metrics(receipt) is None
    assert stats.call_count == 3


def test_an_article_submitted_before_midnight_is_looked_for_on_both_days(
    ctx: ChannelContext,
) -> None:
    ch = channel(ctx)
    ch._record(key(), publish_id="100000001", msg_data_id=2247483650, submitted_on="2026-11-19")
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        found = ch.lookup(key())
    assert found is not None
    with responses.RequestsMock() as rsps:
        first = statistics_api(rsps, {"list": [], "is_delay": False})
        second = rsps.post(DATACUBE, json=THREE_DAYS)
        figures = days_later(ctx, 3).metrics(found)
    first_body = first.calls[0].request.body
    assert first_body is not None
    assert json.loads(first_body)["begin_date"] == "2026-11-19"
    assert json.loads(second.calls[0].request.body)["begin_date"] == "2026-11-20"
    assert figures is not None and figures.views == 200


def test_a_post_without_a_recorded_statistics_id_has_no_figures(ctx: ChannelContext) -> None:
    with responses.RequestsMock():
        assert days_later(ctx, 3).metrics(Receipt(remote_id="older", url=None)) is None


def test_invalid_token_is_refetched_once_for_statistics(ctx: ChannelContext) -> None:
    receipt = published(ctx)
    with responses.RequestsMock() as rsps:
        token = rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(DATACUBE, json={"errcode": 42001, "errmsg": "access_token expired"})
        stats = rsps.post(DATACUBE, json=THREE_DAYS)
        assert days_later(ctx, 3).metrics(receipt) is not None
    assert token.call_count == 2 and stats.call_count == 1
    assert "access_token=79_ACCESS_TOKEN_xyz" in stats.calls[0].request.url


@pytest.mark.parametrize(
    ("errcode", "kind"),
    [(61501, ContentRejected), (48001, AuthProblem), (45009, RetryLater), (-1, RetryLater)],
)
def test_statistics_errors_map_like_every_other_call(
    ctx: ChannelContext, errcode: int, kind: type[Exception]
) -> None:
    receipt = published(ctx)
    with responses.RequestsMock() as rsps:
        statistics_api(rsps, {"errcode": errcode, "errmsg": "invalid date range"})
        with pytest.raises(kind, match=f"article statistics: errcode {errcode}"):
            days_later(ctx, 3).metrics(receipt)


def test_statistics_msgid_is_the_msg_data_id_and_position_or_the_long_url() -> None:
    assert statistics_msgid(2247483650, {"idx": 1, "article_url": "x"}) == "2247483650_1"
    long_url = "http://mp.weixin.qq.com/s?__biz=MzA4&mid=2247483650&idx=2&sn=3c&chksm=a1#rd"
    assert statistics_msgid(None, {"idx": 2, "article_url": long_url}) == "2247483650_2"
    assert statistics_msgid(None, PUBLISHED["article_detail"]["item"][0]) is None


def test_every_inline_image_of_the_site_is_uploaded_and_kept(ctx: ChannelContext) -> None:
    write_jpeg(ctx.content_dir / "images" / "inline.png")
    story = make_story(
        html='<p>Before</p><p><img src="/images/inline.png" alt="Inline"></p>'
        f'<p><img src="{SITE}/images/kitchen.jpg" alt="The kitchen"></p>'
        '<p><img src="https://elsewhere.example/x.jpg" alt="External"></p>'
    )
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    paths = {i["path"] for i in post.payload["body_images"]}
    assert paths == {"images/inline.png", "images/kitchen.jpg"}
    with responses.RequestsMock() as rsps:
        rsps.post(f"{WX}/stable_token", json=TOKEN)
        rsps.post(f"{WX}/material/add_material", json={"media_id": "THUMB"})
        img = rsps.post(f"{WX}/media/uploadimg", json={"url": "http://mmbiz.qpic.cn/img/0"})
        draft = rsps.post(f"{WX}/draft/add", json={"media_id": "DRAFT"})
        rsps.post(f"{WX}/freepublish/submit", json=SUBMITTED)
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)
        ch.publish(post, key())
    content = json.loads(draft.calls[0].request.body)["articles"][0]["content"]
    assert img.call_count == 2
    assert content.count('src="http://mmbiz.qpic.cn/img/0"') == 2
    assert "elsewhere.example" not in content  # WeChat drops external images itself


def test_a_story_without_a_cover_is_reported_by_check() -> None:
    problems = WeChat.check_story({"title": "T", "channels": "wechat"}, {})
    assert problems and problems[0][0] == "channels"
    assert "cover" in problems[0][1]
    assert WeChat.check_story({"image": "images/x.jpg"}, {}) == []
    assert WeChat.check_story({"title": "T"}, {"cover": "images/cover.jpg"}) == []
