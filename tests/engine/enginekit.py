"""Building blocks for the engine's tests: a site folder with settings and a manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Row, select
from sqlalchemy.engine import Engine

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
from publisher import db, ledger
from publisher import settings as settings_mod
from publisher.dispatch import Dispatcher
from publisher.model import Manifest, Story, Testimonial
from publisher.settings import Settings


def story(
    slug: str,
    publish_at: datetime,
    *,
    channels: Iterable[str] = ("outbox",),
    timezone: str = "UTC",
    variants: Mapping[str, str] | None = None,
    consent: bool | None = None,
    consent_until: date | None = None,
    content_hash: str = "h1",
    region: str | None = None,
) -> Story:
    testimonial = None
    if consent is not None:
        testimonial = Testimonial("Lin", consent, consent_until, 5, None)
    return Story(
        slug=slug,
        title=f"Story {slug}",
        summary="A kitchen renovated in Xiamen.",
        lang="en",
        region=region,
        category="testimonials" if testimonial else "stories",
        url=f"http://127.0.0.1:8000/stories/{slug}.html",
        html='<p>See <a href="https://shop.example/sofa">the sofa</a>.</p>',
        text="See the sofa.",
        images=(),
        channels=tuple(channels),
        publish_at=publish_at.astimezone(UTC),
        timezone=timezone,
        variants=dict(variants or {}),
        offer=None,
        store=None,
        testimonial=testimonial,
        overrides={},
        source=f"content/stories/{slug}.md",
        content_hash=content_hash,
    )


def write_manifest(root: Path, stories: Iterable[Story]) -> Path:
    manifest = Manifest(version=1, site_url="http://127.0.0.1:8000", stories=tuple(stories))
    path = root / "output" / "storyloop-manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest.to_json(), ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


def write_settings(
    root: Path,
    *,
    db_url: str,
    channels: Mapping[str, Mapping[str, Any]] | None = None,
    **engine: Any,
) -> settings_mod.Settings:
    conf = {
        "database_url": db_url,
        "var_dir": "var",
        "channels": dict(channels or {"outbox": {"type": "outbox"}}),
        "publish_threads": 1,
        **engine,
    }
    (root / "content").mkdir(parents=True, exist_ok=True)
    path = root / "pelicanconf.py"
    path.write_text(
        f'PATH = "content"\nOUTPUT_PATH = "output"\nTIMEZONE = "UTC"\nSTORYLOOP = {conf!r}\n',
        encoding="utf-8",
    )
    return settings_mod.load(path)


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

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
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


def start_worker(
    config: Path, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A ``storyloop run --no-serve`` worker in a process of its own (so a test can SIGKILL
    it), its output appended to ``log``."""
    from tests.conftest import ROOT

    argv = [sys.executable, "-c", "from publisher.cli import main; main()"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*argv, "--config", str(config), "-v", "run", "--no-serve"],
            env=dict(env) if env is not None else {**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


# --------------------------------------------------------------------------- chaos runs


def wait_running(worker: subprocess.Popen[bytes], log: Path) -> None:
    mark = f":{worker.pid}:"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(mark in line for line in log.read_text().splitlines() if "engine running" in line):
            return
        time.sleep(0.2)
    raise TimeoutError(f"worker {worker.pid} did not start")


def ledger_rows(url: str) -> list[Row[Any]]:
    engine = db.connect(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(ledger.deliveries)).all())
    except Exception:  # not migrated yet
        return []
    finally:
        engine.dispose()


def settled(row: Row[Any]) -> bool:
    """Sent, or held for a person (only a plain channel may hold one)."""
    return row.state == ledger.SENT or (row.state == ledger.UNKNOWN and row.next_attempt_at is None)


def victim(workers: list[subprocess.Popen[bytes]], port: int) -> int | None:
    """A worker the network on ``port`` is answering right now, if one comes within 3 s."""
    deadline = time.monotonic() + 3.0
    pids = {w.pid: i for i, w in enumerate(workers)}
    while time.monotonic() < deadline:
        busy = requests.get(f"http://127.0.0.1:{port}/inflight", timeout=5).json()
        mid = [pids[p] for p in busy if p in pids]
        if mid:
            return mid[0]
        time.sleep(0.02)
    return None
