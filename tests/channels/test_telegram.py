from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses

from channels.base import ChannelContext, OutcomeUnknown, RateLimited
from channels.telegram import CAPTION_LIMIT, Telegram
from channels.text import count_utf16
from publisher.settings import Secret
from tests.channels.networks import SECRETS, TG
from tests.channels.storybook import key, links_for, make_story, write_jpeg

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
SENT = {"ok": True, "result": {"message_id": 42, "date": 1763602200, "chat": {"id": -100123}}}


@pytest.fixture
def ctx(tmp_path: Path) -> ChannelContext:
    write_jpeg(tmp_path / "content" / "images" / "kitchen.jpg")
    return ChannelContext(
        var_dir=tmp_path / "var", content_dir=tmp_path / "content", now=lambda: NOW
    )


def channel(ctx: ChannelContext) -> Telegram:
    return Telegram({"chat_id": "@cedarandclay", "bot_token": Secret(SECRETS["telegram"])}, ctx)


def test_html_escapes_only_ampersand_and_angle_brackets(ctx: ChannelContext) -> None:
    story = make_story(title='Tiles & "light" <restored>', summary="It's 5 < 6 & 7 > 3.", images=())
    post = channel(ctx).render(story, None, links_for(story))
    text = post.payload["text"]
    assert text.startswith('<b>Tiles &amp; "light" &lt;restored&gt;</b>')
    assert "It's 5 &lt; 6 &amp; 7 &gt; 3." in text


def test_message_previews_the_tracked_story_link(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        sent = rsps.post(f"{TG}/sendMessage", json=SENT)
        receipt = ch.publish(post, key())
    body = json.loads(sent.calls[0].request.body)
    assert body["parse_mode"] == "HTML"
    assert body["chat_id"] == "@cedarandclay"
    assert body["link_preview_options"] == {
        "url": "https://t.cedarandclay.example/go/s1",
        "prefer_large_media": True,
    }
    assert (receipt.remote_id, receipt.url) == ("42", "https://t.me/cedarandclay/42")


def test_photo_caption_is_cut_to_1024(ctx: ChannelContext) -> None:
    story = make_story(summary="A long caption sentence about the kitchen. " * 80)
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    assert post.payload["method"] == "sendPhoto"
    assert count_utf16(post.text) <= CAPTION_LIMIT
    assert post.text.endswith("https://t.cedarandclay.example/go/s1")
    with responses.RequestsMock() as rsps:
        sent = rsps.post(f"{TG}/sendPhoto", json=SENT)
        ch.publish(post, key())
    assert b'name="photo"; filename="kitchen.jpg"' in sent.calls[0].request.body


def test_a_timeout_is_an_unknown_outcome(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{TG}/sendMessage", body=requests.ReadTimeout("read timeout"))
        with pytest.raises(OutcomeUnknown) as caught:
            ch.publish(ch.render(story, None, links_for(story)), key())
    assert SECRETS["telegram"] not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_429_waits_for_retry_after_from_the_body(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    body = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 35",
        "parameters": {"retry_after": 35},
    }
    with responses.RequestsMock() as rsps:
        rsps.post(f"{TG}/sendMessage", json=body, status=429)
        with pytest.raises(RateLimited) as caught:
            ch.publish(ch.render(story, None, links_for(story)), key())
    assert caught.value.until == NOW + timedelta(seconds=35)


def test_library_log_lines_never_show_the_bot_token(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logger.debug(
            '%s "%s %s HTTP/1.1" 200',
            "api.telegram.org",
            "POST",
            f"/bot{SECRETS['telegram']}/sendMessage",
        )
    assert SECRETS["telegram"] not in caplog.text
    assert "/***/sendMessage" in caplog.text
