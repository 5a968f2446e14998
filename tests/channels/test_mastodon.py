from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
import responses

from channels.base import ChannelContext, ContentRejected, MediaLimits, OutcomeUnknown, Receipt
from channels.mastodon import Mastodon
from publisher.settings import Secret
from tests.channels.networks import MASTODON, SECRETS
from tests.channels.storybook import key, links_for, make_story, write_jpeg

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
STATUS = {"id": "113", "url": f"{MASTODON}/@cc/113", "uri": f"{MASTODON}/users/cc/statuses/113"}


@pytest.fixture
def ctx(tmp_path: Path) -> ChannelContext:
    write_jpeg(tmp_path / "content" / "images" / "kitchen.jpg", (600, 600), noise=True)
    return ChannelContext(
        var_dir=tmp_path / "var", content_dir=tmp_path / "content", now=lambda: NOW
    )


def channel(ctx: ChannelContext, **extra: object) -> Mastodon:
    settings = {"instance": MASTODON, "token": Secret(SECRETS["mastodon"]), "poll_interval": 0}
    return Mastodon({**settings, **extra}, ctx)


def instance(rsps: responses.RequestsMock, limit: int = 500) -> None:
    config = {"statuses": {"max_characters": limit, "characters_reserved_per_url": 23}}
    rsps.get(f"{MASTODON}/api/v2/instance", json={"configuration": config})


def test_status_carries_idempotency_key_from_the_delivery(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        instance(rsps)
        sent = rsps.post(f"{MASTODON}/api/v1/statuses", json=STATUS)
        receipt = ch.publish(post, key("d-42"))
    request = sent.calls[0].request
    assert request.headers["Idempotency-Key"] == "d-42"
    assert request.headers["Authorization"] == f"Bearer {SECRETS['mastodon']}"
    form = parse_qs(request.body)
    assert form["status"] == [post.text]
    assert form["visibility"] == ["public"]
    assert form["language"] == ["en"]
    assert (receipt.remote_id, receipt.url) == ("113", STATUS["url"])


def test_media_still_processing_is_polled_until_ready(ctx: ChannelContext) -> None:
    story = make_story()
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        instance(rsps)
        upload = rsps.post(f"{MASTODON}/api/v2/media", json={"id": "110", "url": None}, status=202)
        rsps.get(f"{MASTODON}/api/v1/media/110", json={"id": "110", "url": None}, status=206)
        rsps.get(f"{MASTODON}/api/v1/media/110", json={"id": "110", "url": "https://f/1.jpg"})
        sent = rsps.post(f"{MASTODON}/api/v1/statuses", json=STATUS)
        ch.publish(post, key())
        polls = [c for c in rsps.calls if str(c.request.url).endswith("/api/v1/media/110")]
    assert len(polls) == 2
    assert b'name="description"' in upload.calls[0].request.body
    assert b"The kitchen" in upload.calls[0].request.body
    assert parse_qs(sent.calls[0].request.body)["media_ids[]"] == ["110"]


def test_an_image_too_large_is_downscaled_not_rejected(
    ctx: ChannelContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Mastodon, "media", MediaLimits(max_images=4, max_image_bytes=20_000))
    assert (ctx.content_dir / "images" / "kitchen.jpg").stat().st_size > 20_000
    story = make_story()
    ch = channel(ctx)
    with responses.RequestsMock() as rsps:
        instance(rsps)
        upload = rsps.post(f"{MASTODON}/api/v2/media", json={"id": "110"})
        rsps.post(f"{MASTODON}/api/v1/statuses", json=STATUS)
        ch.publish(ch.render(story, None, links_for(story)), key())
    assert len(upload.calls[0].request.body) < 21_000


def test_instance_limit_is_read_from_the_server_and_used_by_render(ctx: ChannelContext) -> None:
    story = make_story(summary="Long words here. " * 60, images=())
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        instance(rsps, limit=200)
        with pytest.raises(ContentRejected, match="allows 200 characters"):
            ch.publish(post, key())
    shorter = ch.render(story, None, links_for(story))
    assert len(shorter.text) < len(post.text)


def test_unreachable_instance_keeps_the_configured_limit(ctx: ChannelContext) -> None:
    ch = channel(ctx, max_characters=1000)
    with responses.RequestsMock():
        assert ch.instance_limit() == 1000


def test_lookup_finds_the_status_by_its_tracked_link(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        instance(rsps)
        rsps.post(f"{MASTODON}/api/v1/statuses", body=requests.ReadTimeout())
        with pytest.raises(OutcomeUnknown):
            ch.publish(post, key("d-7"))
    mine = {
        "id": "200",
        "url": f"{MASTODON}/@cc/200",
        "content": '<p><a href="https://t.cedarandclay.example/go/s1">x</a></p>',
    }
    other = {"id": "199", "url": f"{MASTODON}/@cc/199", "content": "<p>other</p>"}
    with responses.RequestsMock() as rsps:
        rsps.get(f"{MASTODON}/api/v1/accounts/verify_credentials", json={"id": "77"})
        rsps.get(f"{MASTODON}/api/v1/accounts/77/statuses", json=[other, mine])
        found = ch.lookup(key("d-7"))
    assert found is not None and found.remote_id == "200"


def test_metrics_read_favourites_reblogs_and_replies(ctx: ChannelContext) -> None:
    ch = channel(ctx)
    data = {**STATUS, "favourites_count": 5, "reblogs_count": 2, "replies_count": 1}
    with responses.RequestsMock() as rsps:
        rsps.get(f"{MASTODON}/api/v1/statuses/113", json=data)
        m = ch.metrics(Receipt("113"))
    assert m is not None and (m.likes, m.reposts, m.replies) == (5, 2, 1)
