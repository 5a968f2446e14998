from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from channels.base import ChannelContext, ChannelNotFound
from channels.outbox import Outbox
from publisher.adapters import open_channel
from publisher.settings import Secret
from tests.channels.storybook import TRACK, key, links_for, make_settings, make_story


def test_channel_without_credentials_opens_as_outbox_and_says_so(
    tmp_path: Path,
    context: ChannelContext,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STORYLOOP_MASTODON_TOKEN", raising=False)
    settings = make_settings(
        tmp_path,
        {
            "masto-de": {
                "type": "mastodon",
                "instance": "https://m.example",
                "token": {"env": "STORYLOOP_MASTODON_TOKEN"},
            }
        },
    )
    with caplog.at_level(logging.WARNING):
        channel = open_channel("masto-de", settings, context)
        open_channel("masto-de", settings, context)
    assert isinstance(channel, Outbox)
    announced = [r.getMessage() for r in caplog.records if "no credentials" in r.getMessage()]
    folder = context.var_dir / "outbox" / "masto-de"
    assert announced == [
        f'channel "masto-de": no credentials (missing: token) – writing to {folder}/'
    ]


def test_outbox_renders_with_the_real_adapter_and_writes_json_and_text(
    tmp_path: Path, context: ChannelContext
) -> None:
    settings = make_settings(tmp_path, {"mastodon": {"instance": "https://m.example"}})
    channel = open_channel("mastodon", settings, context)
    story = make_story()
    post = channel.render(story, "A", links_for(story))
    receipt = channel.publish(post, key("d-1"))
    folder = context.var_dir / "outbox" / "mastodon"
    data = json.loads((folder / "d-1.json").read_text(encoding="utf-8"))
    assert data["payload"]["status"] == post.text
    assert data["adapter"] == "mastodon"
    assert (folder / "d-1.txt").read_text(encoding="utf-8") == post.text + "\n"
    assert receipt.remote_id == "d-1"
    assert receipt.url == (folder / "d-1.json").absolute().as_uri()
    assert f"{TRACK}/go/s1" in post.text


def test_outbox_publish_is_idempotent_and_lookup_finds_it(
    tmp_path: Path, context: ChannelContext
) -> None:
    channel = open_channel("outbox", make_settings(tmp_path, {}), context)
    story = make_story()
    post = channel.render(story, None, links_for(story))
    assert channel.lookup(key("same")) is None
    first = channel.publish(post, key("same"))
    second = channel.publish(post, key("same"))
    assert first == second == channel.lookup(key("same"))
    assert sorted(p.name for p in (context.var_dir / "outbox" / "outbox").iterdir()) == [
        "same.json",
        "same.txt",
    ]


def test_outbox_never_writes_a_revealed_secret(tmp_path: Path, context: ChannelContext) -> None:
    channel = Outbox({"name": "hooks", "token": Secret("s3cr3t-value")}, context)
    story = make_story()
    post = channel.render(story, None, links_for(story))
    post = type(post)(post.channel, post.text, {**post.payload, "auth": Secret("s3cr3t-value")})
    channel.publish(post, key("k"))
    for path in (context.var_dir / "outbox" / "hooks").iterdir():
        assert "s3cr3t-value" not in path.read_text(encoding="utf-8")
    assert "s3cr3t-value" not in repr(channel)


def test_unknown_channel_type_lists_installed_ones(tmp_path: Path, context: ChannelContext) -> None:
    settings = make_settings(tmp_path, {"myspace": {}})
    with pytest.raises(
        ChannelNotFound, match=r'No channel named "myspace" \(installed: .*mastodon'
    ):
        open_channel("myspace", settings, context)


def test_import_path_type_loads_a_private_adapter(tmp_path: Path, context: ChannelContext) -> None:
    settings = make_settings(tmp_path, {"private": {"type": "channels.outbox:Outbox"}})
    channel = open_channel("private", settings, context)
    assert isinstance(channel, Outbox)
    assert channel.settings["tracking_base_url"] == TRACK


def test_an_optional_secret_named_but_unset_still_means_outbox(
    tmp_path: Path, context: ChannelContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORYLOOP_SMTP_PASSWORD", raising=False)
    conf = {
        "type": "email",
        "host": "127.0.0.1",
        "sender": "Shop <s@example.com>",
        "subscribers": "subscribers.csv",
        "password": {"env": "STORYLOOP_SMTP_PASSWORD"},
    }
    settings = make_settings(tmp_path, {"letters": conf})
    assert isinstance(open_channel("letters", settings, context), Outbox)
    monkeypatch.setenv("STORYLOOP_SMTP_PASSWORD", "hunter2")
    settings = make_settings(tmp_path, {"letters": conf})  # secrets are read with the settings
    assert not isinstance(open_channel("letters", settings, context), Outbox)
