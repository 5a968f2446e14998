"""Settings that would make the engine unsafe are errors: live email without a signing key (its
unsubscribe links could be forged) and a network reached over plain http://. `storyloop check`
reports them, `storyloop run` and `publish` refuse to start, and the adapters refuse to send."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.base import AuthProblem, ChannelContext
from channels.email import Email
from channels.outbox import Outbox
from publisher.adapters import open_channel
from publisher.errors import SettingsError
from publisher.settings import load
from tests.channels.networks import SmtpServer
from tests.channels.storybook import key, links_for, make_story
from tests.conftest import free_port
from tests.test_content import GOOD_STORY, Site

LIVE_EMAIL = """"email": {"host": "127.0.0.1", "port": %d, "starttls": False,
                  "sender": "Shop <news@shop.test>", "subscribers": "subscribers.csv"},"""
OUTBOX_EMAIL = """"email": {"host": "127.0.0.1", "sender": "news@shop.test",
                    "subscribers": "subscribers.csv", "password": {"env": "SL_UNSET_PW"}},"""


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORYLOOP_SIGNING_KEY", raising=False)
    monkeypatch.delenv("SL_UNSET_PW", raising=False)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


def email_site(root: Path, conf: str) -> Site:
    root.mkdir(parents=True, exist_ok=True)
    site = Site(root, extra_channels=conf)
    (root / "subscribers.csv").write_text("email,name,consent\nlin@example.com,Lin,yes\n")
    site.write("kitchen.md", GOOD_STORY)
    return site


def storyloop(site: Site, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    conf = str(site.root / "pelicanconf.py")
    clean = {k: v for k, v in os.environ.items() if k != "STORYLOOP_SIGNING_KEY"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("storyloop")), "--config", conf, *args],
        cwd=site.root, capture_output=True, text=True, timeout=120, env={**clean, **env},
    )  # fmt: skip


def test_check_reports_live_email_without_a_signing_key(tmp_path: Path) -> None:
    site = email_site(tmp_path, LIVE_EMAIL % 2525)
    result = site.check()
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "STORYLOOP.channels.email" in x)
    assert "live email without STORYLOOP_SIGNING_KEY" in line and line.endswith("[error]")
    assert "openssl rand" in line


def test_check_is_content_with_a_key_or_with_email_going_to_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert email_site(tmp_path / "outbox", OUTBOX_EMAIL).check().exit_code == 0
    site = email_site(tmp_path / "live", LIVE_EMAIL % 2525)
    monkeypatch.setenv("STORYLOOP_SIGNING_KEY", "a-real-key-for-this-test")
    assert site.check().exit_code == 0


@pytest.mark.parametrize("command", [["run", "--no-serve"], ["publish", "--due"]])
def test_the_engine_refuses_to_start_live_email_without_a_key(
    tmp_path: Path, command: list[str]
) -> None:
    site = email_site(tmp_path, LIVE_EMAIL % 2525)
    done = storyloop(site, *command)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        'error: channel "email": live email without STORYLOOP_SIGNING_KEY: its unsubscribe '
        "links would be signed with the public development key, so anyone could forge them "
        "(hint: set STORYLOOP_SIGNING_KEY to a long random secret (e.g. `openssl rand -hex 32`))"
    ]
    assert not (site.root / "var").exists()  # no database, no outbox: nothing was touched


def test_the_email_adapter_sends_nothing_without_a_key(tmp_path: Path, smtp: SmtpServer) -> None:
    csv = tmp_path / "subscribers.csv"
    csv.write_text("email,name,consent\nlin@example.com,Lin,yes\n")
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=tmp_path / "content")
    settings = {"name": "email", "host": "127.0.0.1", "port": smtp.port, "starttls": False,
                "sender": "news@shop.test", "subscribers": str(csv),
                "tracking_base_url": "https://t.shop.test"}  # fmt: skip
    channel = Email(settings, ctx)
    story = make_story()
    with pytest.raises(AuthProblem, match="STORYLOOP_SIGNING_KEY"):
        channel.publish(channel.render(story, None, links_for(story)), key())
    assert smtp.mailbox.envelopes == []


def test_without_a_key_email_still_goes_to_the_outbox(tmp_path: Path) -> None:
    site = email_site(tmp_path, OUTBOX_EMAIL)
    settings = load(site.root / "pelicanconf.py")
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=tmp_path / "content")
    channel = open_channel("email", settings, ctx)
    assert isinstance(channel, Outbox)
    story = make_story()
    channel.publish(channel.render(story, None, links_for(story)), key())
    assert (tmp_path / "var/outbox/email/d-0001.json").is_file()


# --------------------------------------------------------------------------- plain http


HTTP_MASTODON = """"mastodon-dev": {"type": "mastodon", "instance": "http://127.0.0.1:3000",
                        "token": "not-a-secret-in-tests"%s},"""


def test_check_refuses_a_network_reached_over_plain_http(tmp_path: Path) -> None:
    site = Site(tmp_path, extra_channels=HTTP_MASTODON % "")
    site.write("kitchen.md", GOOD_STORY)
    result = site.check()
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if "mastodon-dev" in x)
    assert "instance 'http://127.0.0.1:3000' is not an https:// address" in line
    assert '"allow_http": True' in line


def test_allow_http_says_it_is_meant_for_development(tmp_path: Path) -> None:
    site = Site(tmp_path, extra_channels=HTTP_MASTODON % ', "allow_http": True')
    site.write("kitchen.md", GOOD_STORY)
    assert site.check().exit_code == 0
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=tmp_path / "content")
    assert open_channel("mastodon-dev", load(site.root / "pelicanconf.py"), ctx)


def test_a_live_channel_over_plain_http_does_not_open_and_the_engine_does_not_start(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path, extra_channels=HTTP_MASTODON % "")
    site.write("kitchen.md", GOOD_STORY)
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=tmp_path / "content")
    with pytest.raises(SettingsError, match="not an https:// address"):
        open_channel("mastodon-dev", load(site.root / "pelicanconf.py"), ctx)
    done = storyloop(site, "publish", "--due")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith('error: channel "mastodon-dev": instance ')
