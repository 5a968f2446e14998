"""Building blocks for the engine's tests: a site folder with settings and a manifest."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from publisher import settings as settings_mod
from publisher.model import Manifest, Story, Testimonial


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
