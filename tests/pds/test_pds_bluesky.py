"""The Bluesky adapter against the reference PDS on loopback, not against recorded answers.

Every record goes through the server's own lexicon validation (createRecord without
``validate`` validates every known collection, and answers ``validationStatus``), so what is
accepted here is what bsky.social accepts.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from channels.base import ChannelContext, ContentRejected, DeliveryKey, OutcomeUnknown
from channels.bluesky import Bluesky, tid_for
from publisher.model import Image
from publisher.settings import Secret
from tests.channels.storybook import PLANNED, SITE, key, links_for, make_story, write_jpeg
from tests.pds.pdskit import POSTS, Account, Pds

pytestmark = pytest.mark.pds

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
GLUED = "看这里https://cedarandclay.example/offer了解更多细节"


class Network(requests.Session):
    """A real session that remembers the server's answers, and can lose one createRecord
    answer after the server has acted on it (a timeout on the way back)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[str, requests.Response]] = []
        self.lose_next_create = False

    def request(self, method: str | bytes, url: str | bytes, *a: Any, **kw: Any) -> Any:
        resp = super().request(method, url, *a, **kw)
        nsid = str(url).rsplit("/", 1)[-1]
        self.answers.append((nsid, resp))
        if nsid == "com.atproto.repo.createRecord" and self.lose_next_create:
            self.lose_next_create = False
            raise requests.ReadTimeout("the answer was lost on the way back")
        return resp

    def created(self) -> list[dict[str, Any]]:
        return [r.json() for n, r in self.answers if n == "com.atproto.repo.createRecord" and r.ok]


@pytest.fixture
def account(pds: Pds) -> Account:
    return pds.new_account()


@pytest.fixture
def content(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    write_jpeg(folder / "images" / "kitchen.jpg", (900, 700), noise=True)
    write_jpeg(folder / "images" / "tiles.jpg", (640, 480))
    return folder


def adapter(pds: Pds, account: Account, content: Path, network: Network | None = None) -> Bluesky:
    context = ChannelContext(
        var_dir=content.parent / "var",
        content_dir=content,
        session=network or Network(),
        now=lambda: NOW,
    )
    settings = {
        "name": "bluesky",
        "handle": account.handle,
        "app_password": Secret(account.password),
        "service": pds.service,
    }
    return Bluesky(settings, context)


def stored(pds: Pds, account: Account, rkey: str) -> dict[str, Any]:
    resp = pds.get("com.atproto.repo.getRecord", repo=account.did, collection=POSTS, rkey=rkey)
    resp.raise_for_status()
    return dict(resp.json())


def chinese_story() -> Any:
    return make_story(lang="zh", title="厦门的厨房 👩‍👩‍👧‍👦", summary=f"林女士想要光。{GLUED}")


def test_post_with_facets_and_card_is_valid_and_stored_byte_for_byte(
    pds: Pds, account: Account, content: Path
) -> None:
    network = Network()
    bsky = adapter(pds, account, content, network)
    story = chinese_story()
    post = bsky.render(story, None, links_for(story))
    receipt = bsky.publish(post, key("d-facets"))

    (created,) = network.created()
    assert created["validationStatus"] == "valid"  # the server's lexicon check ran and passed
    value = stored(pds, account, receipt.extra["rkey"])["value"]
    sent = post.payload["record"]
    assert value["text"] == sent["text"] == post.text
    assert value["facets"] == sent["facets"]  # the offsets the adapter computed, unchanged
    assert value["langs"] == ["zh"]
    text = value["text"].encode("utf-8")
    spans = [f["index"] for f in value["facets"]]
    assert [text[s["byteStart"] : s["byteEnd"]].decode() for s in spans] == [
        f["features"][0]["uri"] for f in value["facets"]
    ]
    assert "看这里https://cedarandclay.example/offer" in value["text"]
    uris = [f["features"][0]["uri"] for f in value["facets"]]
    assert [u for u in uris if u.startswith("https://cedarandclay.example/offer")]
    assert value["facets"][-1]["features"][0]["uri"] == links_for(story).get(story.url)
    assert value["embed"]["external"]["uri"] == links_for(story).get(story.url)


def test_link_card_thumb_is_an_uploaded_blob_the_record_keeps(
    pds: Pds, account: Account, content: Path
) -> None:
    bsky = adapter(pds, account, content)
    story = make_story()
    receipt = bsky.publish(bsky.render(story, None, links_for(story)), key("d-thumb"))

    thumb = stored(pds, account, receipt.extra["rkey"])["value"]["embed"]["external"]["thumb"]
    assert thumb["$type"] == "blob" and thumb["mimeType"] == "image/jpeg"
    assert 0 < thumb["size"] <= 1_000_000
    blob = pds.get("com.atproto.sync.getBlob", did=account.did, cid=thumb["ref"]["$link"])
    assert blob.status_code == 200 and len(blob.content) == thumb["size"]


def test_images_with_alt_text_are_accepted(pds: Pds, account: Account, content: Path) -> None:
    """The images embed, built from the adapter's own uploads, with each image's alt text."""
    network = Network()
    bsky = adapter(pds, account, content, network)
    pictures = (
        Image("images/kitchen.jpg", f"{SITE}/images/kitchen.jpg", "厨房朝海的窗", 900, 700, 9),
        Image("images/tiles.jpg", f"{SITE}/images/tiles.jpg", "The old tiles, kept", 640, 480, 9),
    )
    story = make_story(images=pictures)
    record = dict(bsky.render(story, None, links_for(story)).payload["record"])
    record["embed"] = {
        "$type": "app.bsky.embed.images",
        "images": [
            {
                "image": bsky._upload_blob(p.path),
                "alt": p.alt,
                "aspectRatio": {"width": p.width, "height": p.height},
            }
            for p in pictures
        ],
    }
    receipt = bsky._create(record, tid_for(key("d-images")), None)

    assert network.created()[0]["validationStatus"] == "valid"
    images = stored(pds, account, receipt.extra["rkey"])["value"]["embed"]["images"]
    assert [i["alt"] for i in images] == ["厨房朝海的窗", "The old tiles, kept"]
    assert all(i["image"]["mimeType"] == "image/jpeg" for i in images)


def test_the_server_refuses_what_its_lexicon_refuses(
    pds: Pds, account: Account, content: Path
) -> None:
    bsky = adapter(pds, account, content)
    story = make_story(images=())
    post = bsky.render(story, None, links_for(story))
    record = {**post.payload["record"], "text": "长" * 301}  # the lexicon's limit is 300
    too_long = dataclasses.replace(post, payload={**post.payload, "record": record})
    with pytest.raises(ContentRejected, match=r"Invalid app\.bsky\.feed\.post record: grapheme"):
        bsky.publish(too_long, key())
    assert pds.records(account.did) == []


def test_the_record_lives_under_the_key_the_adapter_derived(
    pds: Pds, account: Account, content: Path
) -> None:
    network = Network()
    bsky = adapter(pds, account, content, network)
    story = make_story(images=())
    delivery = DeliveryKey("d-rkey", PLANNED)
    receipt = bsky.publish(bsky.render(story, None, links_for(story)), delivery)

    rkey = tid_for(delivery)
    uri = f"at://{account.did}/{POSTS}/{rkey}"
    assert receipt.extra["rkey"] == rkey and receipt.remote_id == uri
    (created,) = network.created()
    assert created["uri"] == uri and created["cid"] == receipt.extra["cid"]
    assert [r["uri"] for r in pds.records(account.did)] == [uri]
    assert stored(pds, account, rkey)["cid"] == receipt.extra["cid"]


def test_a_lost_answer_is_found_by_get_record_and_never_posted_twice(
    pds: Pds, account: Account, content: Path
) -> None:
    network = Network()
    bsky = adapter(pds, account, content, network)
    story = make_story(images=())
    post = bsky.render(story, None, links_for(story))
    delivery = key("d-lost")
    network.lose_next_create = True
    with pytest.raises(OutcomeUnknown):
        bsky.publish(post, delivery)
    assert len(pds.records(account.did)) == 1  # the server did create it

    again = adapter(pds, account, content)  # the next attempt, as in another process
    found = again.lookup(delivery)
    assert found is not None and found.extra["rkey"] == tid_for(delivery)
    resent = again.publish(again.render(story, None, links_for(story)), delivery)
    assert resent.remote_id == found.remote_id
    assert [r["uri"] for r in pds.records(account.did)] == [found.remote_id]


def test_a_second_publish_of_the_same_delivery_creates_no_second_record(
    pds: Pds, account: Account, content: Path
) -> None:
    story = make_story(images=())
    delivery = key("d-twice")
    receipts = []
    for _ in range(2):
        bsky = adapter(pds, account, content)
        receipts.append(bsky.publish(bsky.render(story, None, links_for(story)), delivery))
    assert receipts[0].remote_id == receipts[1].remote_id
    assert len(pds.records(account.did)) == 1
