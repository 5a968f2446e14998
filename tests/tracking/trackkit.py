"""Tracking test kit: a tiny site with its settings file, a migrated database, stories, the
tracker run as a real ``storyloop serve`` process on a free port, and a raw HTTP client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from channels.base import Links
from publisher import db
from publisher import settings as settings_mod
from publisher.model import Story
from publisher.settings import Settings
from tests.conftest import free_port, wait_for_port

ROOT_DIR = Path(__file__).resolve().parents[2]
API_TOKEN = "test-api-token-not-secret"
SIGNING_KEY = "test-signing-key"

SETTINGS_TEMPLATE = """
SITEURL = "http://127.0.0.1:{port}"
OUTPUT_PATH = "output"
STORYLOOP = {{
    "database_url": {db_url!r},
    "var_dir": "var",
    "tracking": {{
        "base_url": "http://127.0.0.1:{port}",
        "host": "127.0.0.1",
        "port": {port},
        "offer_prefix": "CC",
        "api_token": {{"env": "STORYLOOP_API_TOKEN"}},
        "signing_key": {{"env": "STORYLOOP_SIGNING_KEY"}},
        "behind_proxy": {behind_proxy},
    }},
    "stores": {{"xiamen-1": {{"name": "Xiamen", "region": "xiamen", "currency": "CNY"}}}},
    "channels": {{
        "mastodon": {{
            "instance": "https://mastodon.example",
            "token": {{"env": "TEST_MASTODON_TOKEN"}},
        }},
        "email": {{"host": "127.0.0.1", "port": 1025}},
        "telegram": {{"chat_id": "@x"}},
    }},
}}
"""


def write_site(root: Path, db_url: str, port: int, *, behind_proxy: bool = False) -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    text = SETTINGS_TEMPLATE.format(db_url=db_url, port=port, behind_proxy=behind_proxy)
    (root / "pelicanconf.py").write_text(text, encoding="utf-8")
    output = root / "output"
    (output / "stories").mkdir(parents=True, exist_ok=True)
    (output / "index.html").write_text("<h1>Cedar & Clay</h1>", encoding="utf-8")
    (output / "stories" / "kitchen.html").write_text("<h1>厨房</h1>", encoding="utf-8")
    (output / "style.css").write_text("body{}", encoding="utf-8")
    (output / "404.html").write_text("<h1>页面不存在 Page not found</h1>", encoding="utf-8")
    return settings_mod.load(root / "pelicanconf.py")


def make_story(**over: Any) -> Story:
    base = Story(
        slug="kitchen",
        title="厦门的厨房 A kitchen in Xiamen",
        summary="A renovated kitchen",
        lang="zh",
        region="xiamen",
        category="stories",
        url="http://127.0.0.1:8000/stories/kitchen.html",
        html=(
            '<p>See <a href="/shop/sofa.html?utm_source=editor">the sofa</a>, '
            '<a href="https://maps.example/store?id=7#map">the store</a>, '
            '<a href="mailto:hi@example.com">mail</a>, <a href="tel:+861234">call</a>, '
            '<a href="#top">top</a>.</p>'
        ),
        text="See the sofa.",
        images=(),
        channels=("mastodon", "email"),
        publish_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
        timezone="Asia/Shanghai",
        variants={"A": "Kitchen A", "B": "Kitchen B"},
        offer="10% off any sofa",
        store="xiamen-1",
        testimonial=None,
        overrides={},
        source="content/stories/kitchen.md",
        content_hash="h",
    )
    return replace(base, **over)


def link_code(site: Site) -> str:
    """The tracked-link code of ``make_story()``'s page in a Mastodon post (variant A)."""
    from publisher.tracking import prepare_links

    with site.engine.begin() as conn:
        links = prepare_links(
            conn,
            site.settings,
            delivery_id="d1",
            story=make_story(),
            channel="mastodon",
            variant="A",
        )
    return links.get(make_story().url).rsplit("/", 1)[1]


@dataclass
class Site:
    root: Path
    settings: Settings
    engine: Engine
    port: int


def open_site(root: Path, db_url: str, *, behind_proxy: bool = False) -> Site:
    port = free_port()
    settings = write_site(root, db_url, port, behind_proxy=behind_proxy)
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    return Site(root, settings, engine, port)


def storyloop_argv(site: Site, *args: str) -> list[str]:
    command = "from publisher.cli import main; main()"
    return [sys.executable, "-c", command, "--config", str(site.settings.source), *args]


def tracker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(STORYLOOP_API_TOKEN=API_TOKEN, STORYLOOP_SIGNING_KEY=SIGNING_KEY)
    env.pop("STORYLOOP_DATABASE_URL", None)
    return env


def run_storyloop(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        storyloop_argv(site, *args),
        cwd=site.root,
        env=tracker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


class Tracker:
    """``storyloop serve`` as a real process."""

    def __init__(self, site: Site, *extra: str) -> None:
        self.site = site
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Tracker:
        argv = storyloop_argv(self.site, "serve", "--port", str(self.site.port), *self.extra)
        self.process = subprocess.Popen(
            argv,
            cwd=self.site.root,
            env=tracker_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.site.port)
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (granian's main process and its workers)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        _wait_port_free(self.site.port)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _wait_port_free(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> Response:
    """Send bytes exactly as given (no client-side cleaning) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(status, headers, body)


def request(
    port: int,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Response:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return raw_request(port, ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body)


@dataclass
class Served:
    site: Site
    tracker: Tracker
    links: Links  # for delivery "d1" (mastodon, variant A)


def serve_site(root: Path, db_url: str | None = None, *, behind_proxy: bool = False) -> Served:
    from publisher.tracking import prepare_links

    url = db_url or f"sqlite:///{root / 'var' / 'storyloop.db'}"
    site = open_site(root, url, behind_proxy=behind_proxy)
    with site.engine.begin() as conn:
        links = prepare_links(
            conn,
            site.settings,
            delivery_id="d1",
            story=make_story(url=f"http://127.0.0.1:{site.port}/stories/kitchen.html"),
            channel="mastodon",
            variant="A",
        )
    return Served(site, Tracker(site).start(), links)


def ingest_now(site: Site) -> None:
    from publisher.tracking.ingest import ingest
    from publisher.tracking.journal import journal_dir

    ingest(site.engine, journal_dir(site.settings.var_dir))


def click_kinds(site: Site) -> dict[str, int]:
    from sqlalchemy import func, select

    from publisher.tracking.schema import clicks

    with site.engine.connect() as conn:
        rows = conn.execute(select(clicks.c.kind, func.count()).group_by(clicks.c.kind))
        return {str(kind): int(n) for kind, n in rows}


def add_delivery(
    site: Site,
    delivery_id: str,
    channel: str,
    variant: str | None = None,
    *,
    state: str = "sent",
    story: str = "kitchen",
    sent_at: datetime | None = None,
    remote_id: str | None = None,
) -> None:
    """A row in the engine's ledger, with only the columns its migration requires."""
    from sqlalchemy import text

    now = datetime.now(UTC)
    row = {
        "id": delivery_id,
        "story": story,
        "channel": channel,
        "variant": variant,
        "region": "xiamen",
        "category": "stories",
        "timezone": "Asia/Shanghai",
        "content_hash": "h",
        "due_at": now,
        "state": state,
        "sent_at": (sent_at or now) if state == "sent" else None,
        "remote_id": remote_id,
        "created_at": now,
        "updated_at": now,
    }
    names = ", ".join(row)
    values = ", ".join(f":{k}" for k in row)
    with site.engine.begin() as conn:
        conn.execute(text(f"INSERT INTO deliveries ({names}) VALUES ({values})"), row)
