from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import responses

from channels.base import ChannelContext, ContentRejected, OutcomeUnknown, RetryLater
from channels.webhook import SIGNATURE_HEADER, Webhook
from publisher.settings import Secret
from tests.channels.networks import HOOK, SECRETS
from tests.channels.storybook import key, links_for, make_story

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)


@pytest.fixture
def ch(tmp_path: Path) -> Webhook:
    ctx = ChannelContext(
        var_dir=tmp_path / "var", content_dir=tmp_path / "content", now=lambda: NOW
    )
    return Webhook({"url": HOOK, "signing_secret": Secret(SECRETS["webhook"])}, ctx)


def test_body_is_signed_with_timestamp_and_hmac_sha256(ch: Webhook) -> None:
    story = make_story()
    post = ch.render(story, "A", links_for(story))
    with responses.RequestsMock() as rsps:
        sent = rsps.post(HOOK, json={"id": "evt_1"}, status=202)
        receipt = ch.publish(post, key("d-5"))
    request = sent.calls[0].request
    t, v1 = (part.split("=", 1)[1] for part in request.headers[SIGNATURE_HEADER].split(","))
    assert int(t) == int(NOW.timestamp())
    expected = hmac.new(
        SECRETS["webhook"].encode(), t.encode() + b"." + request.body, hashlib.sha256
    )
    assert hmac.compare_digest(v1, expected.hexdigest())
    assert request.headers["Idempotency-Key"] == "d-5"
    body = json.loads(request.body)
    assert body["delivery"]["id"] == "d-5"
    assert body["story"]["url"] == "https://t.cedarandclay.example/go/s1"
    assert body["offer"]["code"] == "XM-7K2Q"
    assert receipt.remote_id == "evt_1"


def test_body_is_raw_utf8(ch: Webhook) -> None:
    story = make_story(title="厦门的厨房", variants={})
    with responses.RequestsMock() as rsps:
        sent = rsps.post(HOOK, status=204)
        receipt = ch.publish(ch.render(story, None, links_for(story)), key("d-6"))
    assert "厦门的厨房".encode() in sent.calls[0].request.body
    assert receipt.remote_id == "d-6"


@pytest.mark.parametrize(
    ("status", "error"),
    [(408, RetryLater), (400, ContentRejected), (410, ContentRejected), (500, RetryLater)],
)
def test_status_codes_map_to_failure_classes(
    ch: Webhook, status: int, error: type[Exception]
) -> None:
    story = make_story()
    with responses.RequestsMock() as rsps:
        rsps.post(HOOK, json={"error": "nope"}, status=status)
        with pytest.raises(error):
            ch.publish(ch.render(story, None, links_for(story)), key())


def test_a_read_timeout_is_an_unknown_outcome(ch: Webhook) -> None:
    story = make_story()
    with responses.RequestsMock() as rsps:
        rsps.post(HOOK, body=requests.ReadTimeout())
        with pytest.raises(OutcomeUnknown):
            ch.publish(ch.render(story, None, links_for(story)), key())


def test_connection_lost_mid_answer_is_unknown_but_refused_is_retry(ch: Webhook) -> None:
    import urllib3

    story = make_story()
    post = ch.render(story, None, links_for(story))
    aborted = requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted."))
    with responses.RequestsMock() as rsps:
        rsps.post(HOOK, body=aborted)
        with pytest.raises(OutcomeUnknown):
            ch.publish(post, key())
    with responses.RequestsMock() as rsps:
        rsps.post(HOOK, body=requests.ConnectionError("Connection refused"))
        with pytest.raises(RetryLater) as caught:
            ch.publish(post, key())
    assert type(caught.value) is RetryLater and caught.value.retry_at is not None
