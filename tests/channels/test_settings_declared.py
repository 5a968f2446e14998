"""Every setting an adapter reads is one it declares (or one the engine hands every channel), so
``storyloop channels`` and ``check`` can explain it and a load can refuse a bad value of it.

Two ways: each adapter is driven through render, publish, lookup, metrics and delete against its
faked network with settings that write down every key read; and each channel module's source is
searched for the settings it names, for the paths no fake reaches."""

from __future__ import annotations

import re
from collections.abc import ItemsView, ValuesView
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import responses

import channels
from channels.base import (
    COMMON_SETTINGS,
    ENGINE_GIVEN,
    Channel,
    ChannelContext,
    ChannelError,
    ChannelSettings,
    Receipt,
)
from channels.webhook import Webhook
from tests.channels.storybook import key, links_for, make_story
from tests.channels.test_contract import INSTALLED, ctx, network_for, open_adapter, smtp  # noqa: F401

CHANNELS_DIR = Path(channels.__file__).parent
READ = re.compile(
    r"""settings(?:\.get\(|\[)\s*["'](\w+)["']|self\.secret\(\s*["'](\w+)["']"""
    r"""|conf(?:\.get\(|\[)\s*["'](\w+)["']"""
)


class Recording(ChannelSettings):
    """Settings that write down each key looked up (not the walks over every value that mask a
    secret out of a message)."""

    __slots__ = ("read",)

    def __init__(self, values: ChannelSettings) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def values(self) -> ValuesView[Any]:
        return ChannelSettings(self).values()

    def items(self) -> ItemsView[str, Any]:
        return ChannelSettings(self).items()


def allowed(cls: type[Channel]) -> set[str]:
    return {s.name for s in cls.declared_settings()} | set(ENGINE_GIVEN)


def drive(channel: Channel) -> None:
    """Every path of the adapter that reads settings, against whatever the fake answers."""
    story = make_story()
    channel.render(story, None, links_for(story))
    receipt = Receipt(remote_id="1", url=None)
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        for call in (
            lambda: channel.lookup(key()),
            lambda: channel.metrics(receipt),
            lambda: channel.delete(receipt),
            lambda: channel.exists(receipt),
        ):
            with suppress(ChannelError):  # an answer the fake does not give, after the reads
                call()


@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_an_adapter_reads_only_the_settings_it_declares(
    name: str,
    tmp_path: Path,
    ctx: ChannelContext,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    net = network_for(name, tmp_path, request)
    channel = open_adapter(name, net, ctx)
    recording = Recording(channel.settings)
    channel.settings = recording
    story = make_story()
    post = channel.render(story, None, links_for(story))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        net.succeed(rsps)
        channel.publish(post, key())
    drive(channel)
    if type(channel).settings_spec:
        assert recording.read, "the adapter read no setting at all: the recording is not in use"
    undeclared = recording.read - allowed(type(channel))
    assert not undeclared, f"{name} reads settings it does not declare: {sorted(undeclared)}"


def test_the_recording_sees_an_undeclared_read(context: ChannelContext) -> None:
    channel = Webhook({"url": "https://shop.example/hook", "signing_secret": "s3"}, context)
    recording = Recording(channel.settings)
    channel.settings = recording
    assert recording.get("not_declared_anywhere") is None
    assert recording.read - allowed(Webhook) == {"not_declared_anywhere"}


def module_of(cls: type[Channel]) -> Path:
    return CHANNELS_DIR / f"{cls.__module__.rsplit('.', 1)[-1]}.py"


def named_in(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {next(g for g in m.groups() if g) for m in READ.finditer(text)}


@pytest.mark.parametrize("name", sorted(INSTALLED))
def test_every_setting_named_in_a_channel_module_is_declared(name: str) -> None:
    cls = INSTALLED[name]
    undeclared = named_in(module_of(cls)) - allowed(cls)
    assert not undeclared, f"{module_of(cls).name} names undeclared settings: {undeclared}"


def test_the_shared_modules_name_only_the_common_settings() -> None:
    common = {s.name for s in COMMON_SETTINGS} | set(ENGINE_GIVEN)
    for shared in ("base.py", "http.py", "text.py", "images.py", "files.py", "markup.py"):
        found = named_in(CHANNELS_DIR / shared) - common
        assert not found, f"{shared} names settings no channel declares for all: {found}"
