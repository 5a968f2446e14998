"""Each channel's ``delete``: the call its network's API expects, answered as the network answers
(deleted, not found, too old, refused), and the outcome the consent removal records."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import responses

from channels.base import (
    Channel,
    ChannelContext,
    ContentRejected,
    Deletion,
    RateLimited,
    Receipt,
    Removed,
    installed,
)
from channels.bluesky import Bluesky
from channels.email import Email
from channels.mastodon import Mastodon
from channels.outbox import Outbox
from channels.telegram import Telegram
from channels.webhook import Webhook
from channels.wechat import WeChat
from channels.weibo import Weibo
from channels.x import X
from publisher.settings import Secret
from tests.channels.networks import BSKY, MASTODON, NOW, SESSION, TG, WX, XAPI

WEIBO_API = "https://api.weibo.com/2/statuses"
STATUS_ID = "113512417934627390"
AT_URI = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3lbwj2wnsxk2c"
TWEET_ID = "1445880548472328192"
WEIBO_ID = "5107384749230593"


def context(tmp_path: Path) -> ChannelContext:
    return ChannelContext(var_dir=tmp_path / "var", content_dir=tmp_path, now=lambda: NOW)


def mastodon(tmp_path: Path) -> Mastodon:
    return Mastodon({"instance": MASTODON, "token": Secret("masto-token")}, context(tmp_path))


def bluesky(tmp_path: Path) -> Bluesky:
    settings = {"handle": "cedarandclay.bsky.social", "app_password": Secret("app-pw")}
    return Bluesky(settings, context(tmp_path))


def telegram(tmp_path: Path) -> Telegram:
    token = TG.rsplit("/bot", 1)[1]
    return Telegram({"chat_id": "@cedarandclay", "bot_token": Secret(token)}, context(tmp_path))


def x(tmp_path: Path) -> X:
    return X({"access_token": Secret("x-token")}, context(tmp_path))


def weibo(tmp_path: Path) -> Weibo:
    settings = {"access_token": Secret("2.00weibo"), "safe_domain": "cedarandclay.cn"}
    return Weibo(settings, context(tmp_path))


def wechat(tmp_path: Path) -> WeChat:
    return WeChat({"appid": "wx1234567890", "secret": Secret("wx-secret")}, context(tmp_path))


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], Channel]
    receipt: Receipt
    answer: Callable[[responses.RequestsMock], None]
    outcome: Removed
    calls: list[tuple[str, str]]  # (method, url without query) the network saw


def _deleted_status(rsps: responses.RequestsMock) -> None:
    # Mastodon answers the deleted status with its source text ("delete and redraft")
    body = {"id": STATUS_ID, "text": "Der Boden ist wunderschön", "content": "<p>…</p>"}
    rsps.delete(f"{MASTODON}/api/v1/statuses/{STATUS_ID}", json=body)


def _missing_status(rsps: responses.RequestsMock) -> None:
    rsps.delete(
        f"{MASTODON}/api/v1/statuses/{STATUS_ID}", json={"error": "Record not found"}, status=404
    )


def _bsky_deleted(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{BSKY}/com.atproto.server.createSession", json=SESSION)
    commit = {"commit": {"cid": "bafyreigk5d3lbz", "rev": "3lbwj3kqyzk2c"}}
    rsps.post(f"{BSKY}/com.atproto.repo.deleteRecord", json=commit)


def _tg(description: str, ok: bool = False) -> Callable[[responses.RequestsMock], None]:
    def answer(rsps: responses.RequestsMock) -> None:
        if ok:
            rsps.post(f"{TG}/deleteMessage", json={"ok": True, "result": True})
        else:
            body = {"ok": False, "error_code": 400, "description": description}
            rsps.post(f"{TG}/deleteMessage", json=body, status=400)

    return answer


def _x_deleted(rsps: responses.RequestsMock) -> None:
    rsps.delete(f"{XAPI}/tweets/{TWEET_ID}", json={"data": {"deleted": True}})


def _x_missing(rsps: responses.RequestsMock) -> None:
    rsps.delete(f"{XAPI}/tweets/{TWEET_ID}", json={"data": {"deleted": False}})
    # a lookup of a deleted post answers 200 with a resource-not-found error and no data
    error = {
        "value": TWEET_ID,
        "detail": f"Could not find tweet with id: [{TWEET_ID}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "id",
        "resource_id": TWEET_ID,
        "type": "https://api.twitter.com/2/problems/resource-not-found",
    }
    rsps.get(f"{XAPI}/tweets/{TWEET_ID}", json={"errors": [error]})


def _weibo_deleted(rsps: responses.RequestsMock) -> None:
    rsps.post(f"{WEIBO_API}/destroy.json", json={"id": int(WEIBO_ID), "idstr": WEIBO_ID})


def _weibo_missing(rsps: responses.RequestsMock) -> None:
    body = {
        "request": "/2/statuses/destroy.json",
        "error_code": "20101",
        "error": "Target weibo does not exist!",
    }
    rsps.post(f"{WEIBO_API}/destroy.json", json=body, status=400)


def _wx_token(rsps: responses.RequestsMock) -> None:
    token = {"access_token": "79_ACCESS_TOKEN_xyz", "expires_in": 7200}
    rsps.post(f"{WX}/stable_token", json=token)


def _wechat_deleted(rsps: responses.RequestsMock) -> None:
    _wx_token(rsps)
    rsps.post(f"{WX}/freepublish/delete", json={"errcode": 0, "errmsg": "ok"})


def _wechat_missing(rsps: responses.RequestsMock) -> None:
    _wx_token(rsps)
    rsps.post(f"{WX}/freepublish/delete", json={"errcode": 53600, "errmsg": "Article ID 无效"})
    item = {"title": "老公房的厨房", "url": "http://mp.weixin.qq.com/s?__biz=x", "is_deleted": True}
    rsps.post(f"{WX}/freepublish/getarticle", json={"news_item": [item]})


WECHAT_RECEIPT = Receipt(
    "ARTICLE_ID_1", "http://mp.weixin.qq.com/s?__biz=x", {"article_id": "ARTICLE_ID_1"}
)

CASES = [
    Case(
        "mastodon deleted",
        mastodon,
        Receipt(STATUS_ID, f"{MASTODON}/@cc/{STATUS_ID}"),
        _deleted_status,
        Removed.REMOVED,
        [("DELETE", f"{MASTODON}/api/v1/statuses/{STATUS_ID}")],
    ),
    Case(
        "mastodon 404 counts as removed",
        mastodon,
        Receipt(STATUS_ID),
        _missing_status,
        Removed.GONE,
        [("DELETE", f"{MASTODON}/api/v1/statuses/{STATUS_ID}")],
    ),
    Case(
        "bluesky deleteRecord",
        bluesky,
        Receipt(AT_URI, extra={"rkey": "3lbwj2wnsxk2c"}),
        _bsky_deleted,
        Removed.REMOVED,
        [
            ("POST", f"{BSKY}/com.atproto.server.createSession"),
            ("POST", f"{BSKY}/com.atproto.repo.deleteRecord"),
        ],
    ),
    Case(
        "telegram deleteMessage",
        telegram,
        Receipt("42"),
        _tg("", ok=True),
        Removed.REMOVED,
        [("POST", f"{TG}/deleteMessage")],
    ),
    Case(
        "telegram message gone already",
        telegram,
        Receipt("42"),
        _tg("Bad Request: message to delete not found"),
        Removed.GONE,
        [("POST", f"{TG}/deleteMessage")],
    ),
    Case(
        "telegram message too old for a bot",
        telegram,
        Receipt("42"),
        _tg("Bad Request: message can't be deleted"),
        Removed.BY_HAND,
        [("POST", f"{TG}/deleteMessage")],
    ),
    Case(
        "x deleted",
        x,
        Receipt(TWEET_ID),
        _x_deleted,
        Removed.REMOVED,
        [("DELETE", f"{XAPI}/tweets/{TWEET_ID}")],
    ),
    Case(
        "x not there any more",
        x,
        Receipt(TWEET_ID),
        _x_missing,
        Removed.GONE,
        [("DELETE", f"{XAPI}/tweets/{TWEET_ID}"), ("GET", f"{XAPI}/tweets/{TWEET_ID}")],
    ),
    Case(
        "weibo destroy",
        weibo,
        Receipt(WEIBO_ID),
        _weibo_deleted,
        Removed.REMOVED,
        [("POST", f"{WEIBO_API}/destroy.json")],
    ),
    Case(
        "weibo 20101 counts as removed",
        weibo,
        Receipt(WEIBO_ID),
        _weibo_missing,
        Removed.GONE,
        [("POST", f"{WEIBO_API}/destroy.json")],
    ),
    Case(
        "wechat freepublish/delete",
        wechat,
        WECHAT_RECEIPT,
        _wechat_deleted,
        Removed.REMOVED,
        [("POST", f"{WX}/stable_token"), ("POST", f"{WX}/freepublish/delete")],
    ),
    Case(
        "wechat article deleted already",
        wechat,
        WECHAT_RECEIPT,
        _wechat_missing,
        Removed.GONE,
        [
            ("POST", f"{WX}/stable_token"),
            ("POST", f"{WX}/freepublish/delete"),
            ("POST", f"{WX}/freepublish/getarticle"),
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_delete_calls_the_network_s_own_api_and_reads_its_answer(
    tmp_path: Path, case: Case
) -> None:
    channel = case.make(tmp_path)
    with responses.RequestsMock() as rsps:
        case.answer(rsps)
        removal = channel.delete(case.receipt)
        seen = [(c.request.method, str(c.request.url).split("?")[0]) for c in rsps.calls]
        bodies = [c.request.body for c in rsps.calls]
    assert removal.outcome is case.outcome, removal
    assert seen == case.calls
    if case.make is telegram:
        assert bodies[0] is not None
        assert json.loads(bodies[0]) == {"chat_id": "@cedarandclay", "message_id": "42"}
    if case.make is bluesky:
        assert bodies[-1] is not None
        sent = json.loads(bodies[-1])
        assert sent == {
            "repo": SESSION["did"],
            "collection": "app.bsky.feed.post",
            "rkey": "3lbwj2wnsxk2c",
        }
    for secret in ("masto-token", "app-pw", "x-token", "2.00weibo", "wx-secret"):
        assert secret not in removal.detail


def test_a_rate_limited_delete_says_until_when(tmp_path: Path) -> None:
    channel = mastodon(tmp_path)
    with responses.RequestsMock() as rsps:
        rsps.delete(
            f"{MASTODON}/api/v1/statuses/{STATUS_ID}",
            json={"error": "Too many requests"},
            status=429,
            headers={"X-RateLimit-Reset": "2026-11-20T02:00:00.000Z"},
        )
        with pytest.raises(RateLimited) as caught:
            channel.delete(Receipt(STATUS_ID))
    assert caught.value.until is not None and caught.value.until.hour == 2


def test_a_refused_delete_is_a_rejection_with_the_network_s_words(tmp_path: Path) -> None:
    channel = weibo(tmp_path)
    with responses.RequestsMock() as rsps:
        body = {"request": "/2/statuses/destroy.json", "error_code": "20112", "error": "无权限"}
        rsps.post(f"{WEIBO_API}/destroy.json", json=body, status=400)
        with pytest.raises(ContentRejected, match="20112"):
            channel.delete(Receipt(WEIBO_ID))


def test_after_a_lost_answer_the_networks_are_asked_whether_the_post_is_still_there(
    tmp_path: Path,
) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(
            f"{MASTODON}/api/v1/statuses/{STATUS_ID}",
            json={"error": "Record not found"},
            status=404,
        )
        rsps.get(
            f"{BSKY}/com.atproto.repo.getRecord",
            json={"error": "RecordNotFound", "message": "Could not locate record"},
            status=400,
        )
        rsps.get(
            f"{WEIBO_API}/show.json",
            json={"error_code": 20101, "error": "Target weibo does not exist!"},
            status=400,
        )
        assert mastodon(tmp_path).exists(Receipt(STATUS_ID)) is False
        assert bluesky(tmp_path).exists(Receipt(AT_URI)) is False
        assert weibo(tmp_path).exists(Receipt(WEIBO_ID)) is False
    assert telegram(tmp_path).exists(Receipt("42")) is None  # the Bot API cannot read a channel


def test_email_and_webhooks_say_honestly_that_they_cannot_be_recalled(tmp_path: Path) -> None:
    mail = Email({"host": "smtp.example", "from": "shop@example.com"}, context(tmp_path))
    hook = Webhook({"url": "https://shop.example/hooks/storyloop"}, context(tmp_path))
    with responses.RequestsMock() as rsps:
        said = [mail.delete(Receipt("d1")), hook.delete(Receipt("d1"))]
        assert len(rsps.calls) == 0
    assert [s.outcome for s in said] == [Removed.BY_HAND, Removed.BY_HAND]
    assert "cannot be recalled" in said[0].detail and "mailboxes" in said[0].detail
    assert "shop.example" in said[1].detail
    assert Email.deletion is Webhook.deletion is Deletion.NONE


def test_the_outbox_removes_its_own_files(tmp_path: Path) -> None:
    from channels.base import DeliveryKey, Post

    box = Outbox({"name": "outbox"}, context(tmp_path))
    receipt = box.publish(
        Post("outbox", "Der Boden", {"text": "Der Boden"}), DeliveryKey("d1", NOW)
    )
    assert box.exists(receipt) is True
    assert box.delete(receipt).outcome is Removed.REMOVED
    assert box.exists(receipt) is False and box.delete(receipt).outcome is Removed.GONE


def test_every_installed_channel_declares_how_a_post_is_taken_back() -> None:
    for name, cls in installed().items():
        assert isinstance(cls.deletion, Deletion), name
        if cls.deletion is not Deletion.NONE:
            assert cls.delete is not Channel.delete, (
                f"{name} declares {cls.deletion} but cannot delete"
            )
        if cls.deletion is Deletion.API_WITHIN:
            assert cls.delete_within is not None, name
    assert (
        Telegram.delete_within is not None and Telegram.delete_within.total_seconds() == 48 * 3600
    )
