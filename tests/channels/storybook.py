"""Fixtures for channel tests: stories built in code, a content folder with real images."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from channels.base import ChannelContext, DeliveryKey, Links
from publisher import db
from publisher.model import Image, Story
from publisher.settings import Settings, from_pelican
from publisher.state import DatabaseState

SITE = "https://cedarandclay.example"
TRACK = "https://t.cedarandclay.example"
PLANNED = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)


def make_story(**over: Any) -> Story:
    base = Story(
        slug="xiamen-kitchen",
        title="A kitchen that opens onto the sea",
        summary="Mrs. Lin wanted light. Our Xiamen team took out two walls and kept the old tiles.",
        lang="en",
        region="xiamen",
        category="stories",
        url=f"{SITE}/stories/xiamen-kitchen.html",
        html='<p>Mrs. Lin wanted <strong>light</strong>. See <a href="'
        + SITE
        + '/offer">the offer</a>.</p>\n'
        '<p><img src="https://cedarandclay.example/images/kitchen.jpg" alt="The kitchen"></p>',
        text="Mrs. Lin wanted light. See the offer.",
        images=(
            Image("images/kitchen.jpg", f"{SITE}/images/kitchen.jpg", "The kitchen", 64, 48, 900),
        ),
        channels=("mastodon",),
        publish_at=datetime(2026, 11, 20, 1, 0, tzinfo=UTC),
        timezone="Asia/Shanghai",
        variants={"A": "Light, at last: a Xiamen kitchen", "B": "Two walls out, the sea in"},
        offer="10% off a kitchen consultation in November",
        store="xiamen-1",
        testimonial=None,
        overrides={},
        source="content/stories/xiamen-kitchen.md",
        content_hash="abc123",
    )
    return dataclasses.replace(base, **over)


def links_for(story: Story, code: str | None = "XM-7K2Q") -> Links:
    urls = {story.url: f"{TRACK}/go/s1"}
    return Links(urls=urls, offer_code=code)


def key(kid: str = "d-0001", planned: datetime = PLANNED) -> DeliveryKey:
    return DeliveryKey(id=kid, planned_at=planned)


def make_settings(root: Path, channels: dict[str, Any], **engine: Any) -> Settings:
    conf = {"tracking": {"base_url": TRACK}, "channels": channels, **engine}
    return from_pelican({"SITEURL": SITE, "STORYLOOP": conf}, root)


def write_jpeg(path: Path, size: tuple[int, int] = (64, 48), noise: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if noise:
        img = PILImage.effect_noise(size, 80).convert("RGB")
    else:
        img = PILImage.new("RGB", size, (200, 120, 40))
    img.save(path, "JPEG", quality=95)


@pytest.fixture
def context(tmp_path: Path) -> ChannelContext:
    content = tmp_path / "content"
    write_jpeg(content / "images" / "kitchen.jpg")
    return ChannelContext(var_dir=tmp_path / "var", content_dir=content)


def database_state(path: Path) -> DatabaseState:
    """The engine's state store on a migrated SQLite file: what every process shares."""
    engine = db.connect(f"sqlite:///{path}")
    db.upgrade(engine)
    return DatabaseState(engine)
