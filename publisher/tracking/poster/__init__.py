"""Posters for a shop window or a table: the story's offer, its expiry, the business and the
store, and a QR code of a tracked link on the ``offline`` channel, one per store, so each
window is measured like a post. Vector PDF (WeasyPrint) or SVG (the same PDF through poppler's
``pdftocairo``), in A4, A5 or as a folded table tent.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from publisher.errors import NotFound, SettingsError, StoryloopError
from publisher.files import write_atomically
from publisher.model import Story
from publisher.settings import Settings, Store
from publisher.tracking.links import OFFLINE_CHANNEL, prepare_links
from publisher.tracking.poster.layout import SIZES, Content, Size, render

FORMATS = ("pdf", "svg")
SVG_NS = "http://www.w3.org/2000/svg"


class PosterError(StoryloopError):
    """A poster cannot be made as asked."""


@dataclass(frozen=True)
class Poster:
    story: str
    store: str | None
    size: str
    url: str  # the tracked link in the QR code
    offer: str | None
    offer_code: str | None
    until: date | None
    path: Path
    scale: float  # the type size used, as a share of the size's usual one


def offline_delivery_id(story: Story, store: str | None = None) -> str:
    """The delivery a poster's links belong to: one per story x store, the same on every run.

    A store-less poster keeps the id posters had before stores were printed on them."""
    if store is None:
        return f"offline-{story.slug}"[:32]
    wanted = f"offline-{store}-{story.slug}"
    if len(wanted) <= 200:
        return wanted
    digest = hashlib.blake2b(f"{store}\0{story.slug}".encode(), digest_size=8).hexdigest()
    return f"offline-{store[:40]}-{digest}"


def parse_size(name: str) -> Size:
    if name.lower() not in SIZES:
        raise PosterError(f"--size {name!r}: expected one of {', '.join(SIZES)}")
    return SIZES[name.lower()]


def parse_format(name: str) -> str:
    if name.lower() not in FORMATS:
        raise PosterError(f"--format {name!r}: expected one of {', '.join(FORMATS)}")
    return name.lower()


def offer_until(story: Story, entry: Mapping[str, Any] | None = None) -> date | None:
    """The offer's last day: ``Offer-Until`` as the content model gives it (``story.offer_until``)
    or, from a manifest that has it but a model that does not yet, the story's manifest entry."""
    raw = getattr(story, "offer_until", None)
    if raw is None and entry is not None:
        raw = entry.get("offer_until")
        nested = entry.get("offer_rules")
        if raw is None and isinstance(nested, Mapping):
            raw = nested.get("until")
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).date()
    except ValueError as exc:
        raise PosterError(
            f"{story.source}: Offer-Until {str(raw)[:40]!r} is not a date (expected YYYY-MM-DD)"
        ) from exc


def offer_stores(story: Story, entry: Mapping[str, Any] | None = None) -> tuple[str, ...] | None:
    """``Offer-Stores`` if the content model or the manifest carries it."""
    raw = getattr(story, "offer_stores", None)
    if raw is None and entry is not None:
        raw = entry.get("offer_stores")
    if isinstance(raw, str):
        raw = [s.strip() for s in raw.split(",")]
    if isinstance(raw, list | tuple) and raw:
        return tuple(str(s) for s in raw if str(s))
    return None


def candidate_stores(
    settings: Settings, story: Story, entry: Mapping[str, Any] | None = None
) -> list[Store]:
    """Where the story's offer can be redeemed: its Offer-Stores, else the stores of its region,
    else its own Store, else every store."""
    stores = settings.stores
    named = offer_stores(story, entry)
    if named:
        return [stores[s] for s in named if s in stores]
    in_region = [s for s in stores.values() if story.region and s.region == story.region]
    if in_region:
        return in_region
    if story.store and story.store in stores:
        return [stores[story.store]]
    return list(stores.values())


def choose_stores(
    settings: Settings,
    story: Story,
    *,
    store: str | None = None,
    all_stores: bool = False,
    entry: Mapping[str, Any] | None = None,
) -> list[Store | None]:
    """The stores to print posters for (``[None]``: one poster without a store, for a site
    that has no stores in its settings)."""
    configured = settings.stores
    if store and all_stores:
        raise PosterError("--store and --all-stores: give one of them, not both")
    if not configured:
        if store:
            raise NotFound(f'No store "{store}": STORYLOOP has no stores configured')
        return [None]
    candidates = candidate_stores(settings, story, entry)
    if not candidates:
        raise PosterError(
            f"{story.source}: Offer-Stores names no configured store "
            f"(configured: {', '.join(configured)})"
        )
    names = ", ".join(s.id for s in candidates)
    if store:
        if store not in configured:
            known = ", ".join(configured)
            raise NotFound(f'No store "{store}" in STORYLOOP stores (configured: {known})')
        if configured[store] not in candidates:
            raise PosterError(
                f"{story.source}: the offer of {story.slug!r} is not redeemable at store "
                f"{store!r} (stores: {names})"
            )
        return [configured[store]]
    if all_stores:
        return list(candidates)
    if story.store in configured and configured[story.store or ""] in candidates:
        return [configured[story.store or ""]]
    if len(candidates) == 1:
        return [candidates[0]]
    raise PosterError(
        f"{story.slug!r} can be redeemed at several stores ({names})",
        hint="pass --store ID for one, or --all-stores for one poster each",
    )


def business(settings: Settings) -> tuple[str, Path | None]:
    """The business's name and logo file: ``STORYLOOP["business"]``, else Pelican's SITENAME."""
    raw = settings.engine.business
    name = str(raw.name or settings.pelican.get("SITENAME") or "")
    logo = raw.logo
    if not logo:
        return name, None
    path = settings.root / str(logo)
    if not path.is_file():
        raise SettingsError(f"STORYLOOP business.logo: no file {path}")
    if path.suffix.lower() not in (".svg", ".png", ".jpg", ".jpeg"):
        raise SettingsError(f"STORYLOOP business.logo: {path.name}: expected SVG, PNG or JPEG")
    return name, path


def make_posters(
    engine: Engine,
    settings: Settings,
    story: Story,
    out_dir: Path,
    *,
    stores: Sequence[Store | None],
    size: str = "a4",
    fmt: str = "pdf",
    entry: Mapping[str, Any] | None = None,
) -> list[Poster]:
    """One poster per store. Each store's link and offer code are stored in the same
    transaction the poster is drawn in, so a poster that cannot be drawn stores nothing."""
    paper, fmt = parse_size(size), parse_format(fmt)
    name, logo = business(settings)
    until = offer_until(story, entry)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for store in stores:
        made.append(_one(engine, settings, story, store, paper, fmt, out_dir, name, logo, until))
    return made


def make_poster(
    engine: Engine,
    settings: Settings,
    story: Story,
    out_dir: Path,
    *,
    store: str | None = None,
    size: str = "a4",
    fmt: str = "pdf",
) -> Poster:
    """One poster for one store (the story's own when none is named)."""
    chosen = choose_stores(settings, story, store=store)
    return make_posters(engine, settings, story, out_dir, stores=chosen, size=size, fmt=fmt)[0]


def _one(
    engine: Engine,
    settings: Settings,
    story: Story,
    store: Store | None,
    paper: Size,
    fmt: str,
    out_dir: Path,
    name: str,
    logo: Path | None,
    until: date | None,
) -> Poster:
    store_id = store.id if store else None
    with engine.begin() as conn:
        links = prepare_links(
            conn,
            settings,
            delivery_id=offline_delivery_id(story, store_id),
            story=story,
            channel=OFFLINE_CHANNEL,
            variant=store_id,  # the window is the offline channel's variant: reported apart
        )
        url = links.get(story.url)
        content = Content(
            story.lang, name, logo, story.title, story.offer, until, url, links.offer_code, store
        )
        layout = render(content, paper)
        stem = "-".join(p for p in (story.slug, store_id, paper.name) if p)
        path = out_dir / f"{stem}.{fmt}"
        data = layout.pdf if fmt == "pdf" else pdf_to_svg(layout.pdf, content)
        write_atomically(path, data)
    return Poster(
        story.slug,
        store_id,
        paper.name,
        url,
        story.offer,
        links.offer_code,
        until,
        path,
        layout.scale,
    )


def pdf_to_svg(pdf: bytes, content: Content) -> bytes:
    """The PDF's page as SVG (glyphs become paths, so it prints the same without the fonts),
    with the poster's text as the SVG's title and description for search and screen readers."""
    binary = shutil.which("pdftocairo")
    if binary is None:
        raise PosterError(
            "--format svg needs pdftocairo",
            hint="install poppler-utils (Debian/Ubuntu) or poppler (Homebrew), or use --format pdf",
        )
    with tempfile.TemporaryDirectory(prefix="storyloop-poster-") as tmp:
        source, target = Path(tmp) / "poster.pdf", Path(tmp) / "poster.svg"
        source.write_bytes(pdf)
        try:
            subprocess.run(
                [binary, "-svg", str(source), str(target)],
                check=True,
                capture_output=True,
                timeout=120,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            raise PosterError(
                f"pdftocairo could not convert the poster to SVG: "
                f"{detail.decode(errors='replace').strip()[:200] or exc}"
            ) from exc
        return _describe(target.read_bytes(), content)


def _describe(svg: bytes, content: Content) -> bytes:
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(svg)
    root.set("role", "img")
    root.set("{http://www.w3.org/XML/1998/namespace}lang", content.lang)
    desc = [content.offer, content.code, content.url, content.store and content.store.name]
    for position, (tag, text) in enumerate(
        (("title", content.title), ("desc", "\n".join(t for t in desc if t)))
    ):
        element = ET.Element(f"{{{SVG_NS}}}{tag}")
        element.text = text
        root.insert(position, element)
    described: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return described
