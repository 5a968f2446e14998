"""Fixtures for the engine: a migrated ledger on a real database, a clock, scripted channels."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).parent))

from enginekit import write_settings

from channels.base import (
    Channel,
    ChannelContext,
    DeliveryKey,
    Idempotency,
    LengthRule,
    Links,
    Post,
    Receipt,
)
from publisher import db
from publisher.dispatch import Dispatcher
from publisher.model import Story
from publisher.settings import Settings

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


class Scripted(Channel):
    """A channel whose next answers are scripted: an exception to raise, or None to succeed.

    ``lost`` answers model a request that reached the network but whose answer never came back:
    the post is recorded, then the exception is raised."""

    name = "scripted"
    setup_url = "https://example.invalid/setup"
    length = LengthRule(limit=0, counting="none")
    idempotency = Idempotency.KEY

    def __init__(self, settings: Mapping[str, Any], context: ChannelContext) -> None:
        super().__init__(settings, context)
        self.script: list[BaseException | None] = []
        self.lost: set[int] = set()
        self.calls: list[str] = []
        self.posts: dict[str, Receipt] = {}
        self.created = 0

    def render(
        self, story: Story, variant: str | None, links: Links, settings: Mapping[str, Any]
    ) -> Post:
        text = f"{story.headline(variant)} {links.get(story.url)}"
        return Post(self.instance_name, text, {"text": text})

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        n = len(self.calls)
        self.calls.append(key.id)
        answer = self.script.pop(0) if self.script else None
        if answer is not None and n not in self.lost:
            raise answer
        if key.id not in self.posts or self.idempotency is Idempotency.NONE:
            self.created += 1
            self.posts[key.id] = Receipt(f"r-{key.id}", f"https://net.example/{key.id}")
        if answer is not None:
            raise answer
        return self.posts[key.id]

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        if self.idempotency is Idempotency.LOOKUP:
            return self.posts.get(key.id)
        return None


class NoIdempotency(Scripted):
    idempotency = Idempotency.NONE


class Lookup(Scripted):
    idempotency = Idempotency.LOOKUP


@pytest.fixture
def ledger_db(db_url: str) -> Iterator[Engine]:
    engine = db.connect(db_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_site(tmp_path: Path, db_url: str) -> Callable[..., Settings]:
    def make(**kw: Any) -> Settings:
        return write_settings(tmp_path / "site", db_url=db_url, **kw)

    return make


def dispatcher(
    engine: Engine,
    settings: Settings,
    stories: list[Story],
    clock: Clock,
    adapters: Mapping[str, Channel],
) -> Dispatcher:
    by_slug = {s.slug: s for s in stories}
    return Dispatcher(engine, settings, lambda: by_slug, channels=adapters.__getitem__, clock=clock)


def scripted(settings: Settings, cls: type[Scripted] = Scripted, name: str = "net") -> Scripted:
    context = ChannelContext(var_dir=settings.var_dir, content_dir=settings.content_path)
    return cls({"name": name, **settings.channels.get(name, {})}, context)
