from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from atproto_client import models
from atproto_client.models.string_formats import TID_RE

from channels.base import ChannelContext, RetryLater
from channels.bluesky import Bluesky, link_facets, tid_for
from publisher.settings import Secret
from tests.channels.networks import BLOB, BSKY, NOT_FOUND, SECRETS, SESSION
from tests.channels.storybook import database_state, key, links_for, make_story, write_jpeg

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
CREATED = {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/x", "cid": "bafyreic"}


@pytest.fixture
def ctx(tmp_path: Path) -> ChannelContext:
    write_jpeg(tmp_path / "content" / "images" / "kitchen.jpg", (900, 700), noise=True)
    return ChannelContext(
        var_dir=tmp_path / "var", content_dir=tmp_path / "content", now=lambda: NOW
    )


def channel(ctx: ChannelContext) -> Bluesky:
    settings = {"handle": "cedarandclay.bsky.social", "app_password": Secret(SECRETS["bluesky"])}
    return Bluesky(settings, ctx)


def validate(record: dict[str, object]) -> models.AppBskyFeedPost.Record:
    return models.AppBskyFeedPost.Record.model_validate(
        record, context={"strict_string_format": True}
    )


def test_record_key_is_a_valid_deterministic_tid() -> None:
    k = key("delivery-1")
    tid = tid_for(k)
    assert TID_RE.match(tid)
    assert tid == tid_for(key("delivery-1"))
    assert tid != tid_for(key("delivery-2"))
    later = tid_for(key("delivery-1", k.planned_at + timedelta(seconds=1)))
    assert later > tid  # TIDs sort by time


def test_link_facets_use_utf8_byte_offsets() -> None:
    url = "https://t.cedarandclay.example/go/s1"
    text = f"厦门的厨房 👩‍👩‍👧‍👦 看这里：{url} 谢谢"
    (facet,) = link_facets(text)
    start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
    assert text.encode("utf-8")[start:end].decode("utf-8") == url
    assert start != text.index(url)  # characters and bytes differ here


def test_rendered_record_validates_with_the_atproto_models(ctx: ChannelContext) -> None:
    story = make_story(lang="zh", title="厦门的厨房", summary="林女士想要光。" * 60)
    post = channel(ctx).render(story, None, links_for(story))
    record = validate(dict(post.payload["record"]))
    assert isinstance(record.embed, models.AppBskyEmbedExternal.Main)
    assert record.embed.external.uri == "https://t.cedarandclay.example/go/s1"
    assert record.facets and record.facets[-1].features[0].uri == record.embed.external.uri


def test_publish_checks_get_record_then_creates_with_our_record_key(ctx: ChannelContext) -> None:
    story = make_story()
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BSKY}/com.atproto.server.createSession", json=SESSION)
        get = rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json=NOT_FOUND, status=400)
        blob = rsps.post(f"{BSKY}/com.atproto.repo.uploadBlob", json=BLOB)
        create = rsps.post(f"{BSKY}/com.atproto.repo.createRecord", json=CREATED)
        receipt = ch.publish(post, key("d-1"))
    assert get.call_count == 1
    sent = json.loads(create.calls[0].request.body)
    assert sent["rkey"] == tid_for(key("d-1"))
    assert sent["repo"] == SESSION["did"]
    assert create.calls[0].request.headers["Authorization"] == "Bearer eyJ.access"
    record = validate(sent["record"])
    assert record.embed.external.thumb is not None  # type: ignore[union-attr]
    assert len(blob.calls[0].request.body) <= 1_000_000
    assert receipt.url == f"https://bsky.app/profile/cedarandclay.bsky.social/post/{sent['rkey']}"
    assert receipt.remote_id == f"at://{SESSION['did']}/app.bsky.feed.post/{sent['rkey']}"


def test_a_retry_finds_the_existing_record_and_does_not_create_again(ctx: ChannelContext) -> None:
    story = make_story()
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    found = {"uri": "at://x", "cid": "c", "value": {"text": post.text}}
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json=found)
        receipt = ch.publish(post, key("d-1"))
    assert receipt.extra["rkey"] == tid_for(key("d-1"))


def test_duplicate_create_answering_500_resolves_with_get_record(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BSKY}/com.atproto.server.createSession", json=SESSION)
        rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json=NOT_FOUND, status=400)
        rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json={"value": {"text": post.text}})
        rsps.post(
            f"{BSKY}/com.atproto.repo.createRecord",
            json={"error": "InternalServerError", "message": "Internal Server Error"},
            status=500,
        )
        receipt = ch.publish(post, key("d-1"))
    assert receipt.extra["rkey"] == tid_for(key("d-1"))


def test_session_is_cached_in_the_database_across_processes(
    ctx: ChannelContext, tmp_path: Path
) -> None:
    ctx = dataclasses.replace(ctx, state=database_state(tmp_path / "storyloop.db"))
    story = make_story(images=())
    with responses.RequestsMock() as rsps:
        session = rsps.post(f"{BSKY}/com.atproto.server.createSession", json=SESSION)
        rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json=NOT_FOUND, status=400)
        rsps.post(f"{BSKY}/com.atproto.repo.createRecord", json=CREATED)
        for i in range(2):
            ch = channel(ctx)  # a new instance, as in another process
            ch.publish(ch.render(story, None, links_for(story)), key(f"d-{i}"))
    assert session.call_count == 1
    kept = ctx.state.get("bluesky/bluesky", "session")
    assert kept is not None
    assert kept["accessJwt"] == SESSION["accessJwt"]
    assert SECRETS["bluesky"] not in json.dumps(kept)
    assert not ctx.var_dir.exists()  # nothing under var/: the state is the database's


def test_expired_access_token_is_refreshed_once(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    post = ch.render(story, None, links_for(story))
    expired = {"error": "ExpiredToken", "message": "Token has expired"}
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BSKY}/com.atproto.server.createSession", json=SESSION)
        refresh = rsps.post(
            f"{BSKY}/com.atproto.server.refreshSession", json={**SESSION, "accessJwt": "eyJ.new"}
        )
        rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json=NOT_FOUND, status=400)
        rsps.post(f"{BSKY}/com.atproto.repo.createRecord", json=expired, status=400)
        create = rsps.post(f"{BSKY}/com.atproto.repo.createRecord", json=CREATED)
        ch.publish(post, key("d-1"))
    assert refresh.calls[0].request.headers["Authorization"] == "Bearer eyJ.refresh"
    assert create.calls[-1].request.headers["Authorization"] == "Bearer eyJ.new"


def test_lookup_finds_the_record_by_its_key(ctx: ChannelContext) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json=NOT_FOUND, status=400)
        assert channel(ctx).lookup(key("d-9")) is None
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json={"value": {"text": "x"}})
        found = channel(ctx).lookup(key("d-9"))
    assert found is not None and found.extra["rkey"] == tid_for(key("d-9"))


def test_get_record_behind_a_proxy_error_page_is_retry_later(ctx: ChannelContext) -> None:
    story = make_story(images=())
    ch = channel(ctx)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{BSKY}/com.atproto.repo.getRecord", body="<html>upstream</html>", status=504)
        with pytest.raises(RetryLater):
            ch.publish(ch.render(story, None, links_for(story)), key())


def test_metrics_read_likes_reposts_and_replies(ctx: ChannelContext) -> None:
    ch = channel(ctx)
    post = {"likeCount": 7, "repostCount": 2, "quoteCount": 1, "replyCount": 3}
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BSKY}/com.atproto.server.createSession", json=SESSION)
        rsps.get(f"{BSKY}/app.bsky.feed.getPosts", json={"posts": [post]})
        m = ch.metrics(ch._receipt(tid_for(key())))
    assert m is not None and (m.likes, m.reposts, m.replies) == (7, 3, 3)


def test_a_link_glued_to_chinese_gets_a_facet_covering_exactly_the_url(
    ctx: ChannelContext,
) -> None:
    story = make_story(
        lang="zh_CN",
        title="厦门的厨房",
        summary="看这里https://cedarandclay.example/offer了解更多细节",
    )
    links = links_for(story)
    links = type(links)(
        urls={
            **links.urls,
            "https://cedarandclay.example/offer": "https://t.cedarandclay.example/go/o1",
        },
        offer_code=links.offer_code,
    )
    record = channel(ctx).render(story, None, links).payload["record"]
    raw = record["text"].encode("utf-8")
    uris = [f["features"][0]["uri"] for f in record["facets"]]
    assert uris == ["https://t.cedarandclay.example/go/o1", "https://t.cedarandclay.example/go/s1"]
    for facet in record["facets"]:
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        assert raw[start:end].decode("utf-8") == facet["features"][0]["uri"]
    assert record["langs"] == ["zh-CN"]
    validate(dict(record))
