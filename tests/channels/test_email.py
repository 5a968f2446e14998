"""The newsletter against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from channels.base import ChannelContext, ContentRejected, RetryLater
from channels.email import Email, recipient_hash
from publisher.settings import Secret
from publisher.tracking.optout import read_token, unsubscribe_link
from tests.channels.networks import SECRETS, SUBSCRIBERS, SmtpServer
from tests.channels.storybook import key, links_for, make_story
from tests.conftest import free_port

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
SIGNING = Secret("signing-key-for-tests", "STORYLOOP_SIGNING_KEY")


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


@pytest.fixture
def ch(tmp_path: Path, smtp: SmtpServer) -> Email:
    csv = tmp_path / "subscribers.csv"
    csv.write_text(SUBSCRIBERS, encoding="utf-8")
    ctx = ChannelContext(
        var_dir=tmp_path / "var",
        content_dir=tmp_path / "content",
        now=lambda: NOW,
        optouts=lambda: {"optout@example.com"},
        unsubscribe_url=unsubscribe_link("https://t.cedarandclay.example", SIGNING),
    )
    settings = {
        "name": "newsletter",
        "host": "127.0.0.1",
        "port": smtp.port,
        "starttls": False,
        "sender": "Cedar & Clay <stories@cedarandclay.example>",
        "subscribers": str(csv),
        "username": "news",
        "password": Secret(SECRETS["email"]),
        "tracking_base_url": "https://t.cedarandclay.example",
    }
    return Email(settings, ctx)


def received(smtp: SmtpServer) -> list[EmailMessage]:
    return [
        email.message_from_bytes(e.content, policy=email.policy.default)  # type: ignore[misc]
        for e in smtp.mailbox.envelopes
    ]


def test_one_message_per_consenting_subscriber_minus_optouts(
    ch: Email, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    story = make_story()
    with caplog.at_level(logging.WARNING):
        receipt = ch.publish(ch.render(story, None, links_for(story)), key("d-1"))
    recipients = [e.rcpt_tos for e in smtp.mailbox.envelopes]
    assert recipients == [["lin@example.com"], ["anna@example.de"]]
    assert receipt.extra["sent"] == 2
    assert "subscribers.csv:5: email: not an address" in caplog.text


def test_message_has_both_parts_deterministic_id_and_one_click_unsubscribe(
    ch: Email, smtp: SmtpServer
) -> None:
    story = make_story()
    post = ch.render(story, "A", links_for(story))
    ch.publish(post, key("d-1"))
    msg = received(smtp)[0]
    assert msg["Subject"] == "Light, at last: a Xiamen kitchen"
    assert msg["Message-ID"] == f"<d-1.{recipient_hash('lin@example.com')}@cedarandclay.example>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = (p.strip().strip("<>") for p in msg["List-Unsubscribe"].split(","))
    assert https.startswith("https://t.cedarandclay.example/unsubscribe?t=")
    token = parse_qs(urlsplit(https).query)["t"][0]
    assert read_token(token, SIGNING) == "lin@example.com"
    assert mailto == "mailto:stories@cedarandclay.example?subject=unsubscribe"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "https://t.cedarandclay.example/go/s1" in text.get_content()
    assert "XM-7K2Q" in text.get_content()
    assert 'href="https://t.cedarandclay.example/go/s1"' in html.get_content()
    assert https in html.get_content()


def test_a_resend_skips_recipients_already_served(ch: Email, smtp: SmtpServer) -> None:
    story = make_story()
    post = ch.render(story, None, links_for(story))
    smtp.mailbox.rcpt_replies["anna@example.de"] = "451 4.7.1 Greylisted, try again"
    with pytest.raises(RetryLater):
        ch.publish(post, key("d-1"))
    assert ch.lookup(key("d-1")) is None
    smtp.mailbox.rcpt_replies.clear()
    receipt = ch.publish(post, key("d-1"))
    recipients = [e.rcpt_tos[0] for e in smtp.mailbox.envelopes]
    assert recipients == ["lin@example.com", "anna@example.de"]
    assert receipt.extra == {"sent": 1, "refused": 0, "skipped": 1}
    assert ch.lookup(key("d-1")) is not None


def test_a_refused_mailbox_is_skipped_without_failing_the_newsletter(
    ch: Email, smtp: SmtpServer
) -> None:
    smtp.mailbox.rcpt_replies["lin@example.com"] = "550 5.1.1 No such user"
    story = make_story()
    receipt = ch.publish(ch.render(story, None, links_for(story)), key("d-2"))
    assert receipt.extra["refused"] == 1
    assert [e.rcpt_tos[0] for e in smtp.mailbox.envelopes] == ["anna@example.de"]


def test_smtp_5xx_on_data_is_a_rejection_and_4xx_a_retry(ch: Email, smtp: SmtpServer) -> None:
    story = make_story()
    post = ch.render(story, None, links_for(story))
    smtp.mailbox.data_reply = "554 5.7.1 Message rejected"
    with pytest.raises(ContentRejected, match="554"):
        ch.publish(post, key("d-3"))
    smtp.mailbox.data_reply = "452 4.3.1 Insufficient system storage"
    with pytest.raises(RetryLater, match="452"):
        ch.publish(post, key("d-4"))


def test_missing_subscribers_file_is_named(ch: Email, tmp_path: Path) -> None:
    (tmp_path / "subscribers.csv").unlink()
    story = make_story()
    with pytest.raises(ContentRejected, match=r"subscribers\.csv: subscribers file not found"):
        ch.publish(ch.render(story, None, links_for(story)), key())


def test_open_channel_gives_email_the_tracker_signing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from publisher.adapters import open_channel
    from tests.channels.storybook import make_settings

    monkeypatch.setenv("STORYLOOP_SIGNING_KEY", "k-123")
    monkeypatch.setenv("SL_SMTP_PW", "pw")
    conf = {
        "type": "email",
        "host": "127.0.0.1",
        "sender": "a@b.example",
        "subscribers": "subscribers.csv",
        "password": {"env": "SL_SMTP_PW"},
    }
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=tmp_path / "content")
    ch = open_channel("newsletter", make_settings(tmp_path, {"newsletter": conf}), ctx)
    assert isinstance(ch, Email)
    assert ch.context.unsubscribe_url is not None
    token = parse_qs(urlsplit(ch.context.unsubscribe_url("Lin@example.com")).query)["t"][0]
    assert read_token(token, Secret("k-123")) == "lin@example.com"
    assert ch.settings["tracking_base_url"] == "https://t.cedarandclay.example"
    assert "k-123" not in repr(ch) and "pw" not in repr(ch.settings["password"])


def test_subject_with_line_breaks_and_a_literal_encoded_word_survives(
    ch: Email, smtp: SmtpServer
) -> None:
    title = "Save =?utf-8?q?x?= on **tiles**\r\nand\u2028more &amp; less"
    story = make_story(title=title, variants={})
    ch.publish(ch.render(story, None, links_for(story)), key("d-1"))
    msg = received(smtp)[0]
    assert msg["Subject"] == "Save =?utf-8?q?x?= on tiles and more & less"


def test_html_is_sanitised_with_absolute_images_and_the_text_keeps_link_urls(
    ch: Email, smtp: SmtpServer
) -> None:
    story = make_story(
        html='<p onclick="x()">See <a href="/offer">the offer</a> and '
        '<a href="https://elsewhere.example/a">this</a>.<script>alert(1)</script></p>'
        '<p><img src="../images/kitchen.jpg" alt="The kitchen"></p>'
    )
    links = links_for(story)
    links = type(links)(
        urls={
            **links.urls,
            "https://cedarandclay.example/offer": "https://t.cedarandclay.example/go/o1",
        },
        offer_code=links.offer_code,
    )
    ch.publish(ch.render(story, None, links), key("d-1"))
    msg = received(smtp)[0]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "script" not in html and "onclick" not in html
    assert 'src="https://cedarandclay.example/images/kitchen.jpg"' in html
    assert 'href="https://t.cedarandclay.example/go/o1"' in html
    assert "the offer (https://t.cedarandclay.example/go/o1)" in text
    assert "this (https://elsewhere.example/a)" in text


@pytest.mark.parametrize(
    ("lang", "more", "unsubscribe", "tag"),
    [
        ("zh_CN", "阅读全文", "退订", "zh-CN"),
        ("de", "Ganze Geschichte lesen", "Abbestellen", "de"),
        ("en-GB", "Read the whole story", "Unsubscribe", "en-GB"),
    ],
)
def test_the_email_speaks_the_story_language_and_tags_it_in_bcp_47(
    ch: Email, smtp: SmtpServer, lang: str, more: str, unsubscribe: str, tag: str
) -> None:
    story = make_story(lang=lang)
    ch.publish(ch.render(story, None, links_for(story)), key("d-1"))
    msg = received(smtp)[0]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert msg["Content-Language"] == tag
    assert f"{more}: https://t.cedarandclay.example/go/s1" in text
    assert f"{unsubscribe}: https://t.cedarandclay.example/unsubscribe?t=" in text
    assert f'<html lang="{tag}">' in html
