"""Pelican plugin: validates content during the build, adds what the theme shows (offer box, QR
code, region pages, JSON-LD) and writes ``storyloop-manifest.json``, the engine's only input.

Enabled in ``pelicanconf.py`` with ``PLUGINS = ["publisher.pelican_plugin"]``; works the same
under plain ``pelican`` and ``storyloop build``. Errors fail the build with the messages
``storyloop check`` prints; a testimonial without consent is removed before anything is written.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC
from pathlib import Path
from typing import Any

import dateutil.parser
import nh3
from pelican import signals
from pelican.contents import Article
from pelican.generators import ArticlesGenerator, Generator, PelicanTemplateNotFound
from PIL import Image as PILImage

from publisher import qrcodes
from publisher.content import (
    Header,
    Problem,
    Rules,
    duplicate_slugs,
    excluded,
    offer_rules,
    parse_bool,
    parse_publish,
    read_header,
    split_list,
    validate,
)
from publisher.files import write_atomically
from publisher.model import MANIFEST_VERSION, Image, Story, Testimonial
from publisher.reader import use_reader
from publisher.settings import engine_settings

log = logging.getLogger(__name__)
MANIFEST_NAME = "storyloop-manifest.json"
FORK_THRESHOLD = 100  # fewer stories than this: the manifest is written in-process
BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|blockquote|pre|table|ul|ol)>", re.I)
LINE_END = re.compile(r"</tr>|<br\s*/?>", re.I)
CELL_END = re.compile(r"</t[dh]>", re.I)
PRE = re.compile(r"(<pre[\s>].*?</pre>)", re.I | re.S)


class ContentInvalid(SystemExit):
    """Ends the build with exit status 1 after the problems were logged one per line.

    A SystemExit, not an Exception, so Pelican does not wrap it in a traceback: the editor sees
    the same lines ``storyloop check`` prints and nothing else.
    """


@dataclass
class BuildState:
    rules: Rules | None = None
    root: Path = Path(".")
    site_url: str = ""
    output: Path = Path("output")
    stories: list[Story] = field(default_factory=list)
    qr: qrcodes.Codes | None = None
    manifest_child: int | None = None  # pid of the process writing the manifest
    engine: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


STATE = BuildState()


# --------------------------------------------------------------------------- helpers


def display_path(path: str | Path, root: Path) -> str:
    text, prefix = str(path), f"{root}{os.sep}"
    return text[len(prefix) :] if text.startswith(prefix) else os.path.relpath(text, root)


def plain_text(markup: str) -> str:
    """HTML -> text with paragraphs kept apart (used by channels that post plain text)."""
    parts = PRE.split(markup)
    flat = "".join(p if i % 2 else " ".join(p.split()) for i, p in enumerate(parts))
    marked = CELL_END.sub(" | ", LINE_END.sub("\n", BLOCK_END.sub("\n\n", flat)))
    text = re.sub(r"[ \t]*\|[ \t]*", " | ", html.unescape(nh3.clean(marked, tags=set())))
    lines = [line.strip().removesuffix(" |").strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_image_sizes: dict[Path, tuple[int, int, int]] = {}


def image_info(path: Path) -> tuple[int, int, int]:
    if path not in _image_sizes:
        with PILImage.open(path) as img:
            width, height = img.size
        _image_sizes[path] = (width, height, path.stat().st_size)
    return _image_sizes[path]


# --------------------------------------------------------------------------- per article


def story_from(article: Article, header: Header, rules: Rules, site_url: str, root: Path) -> Story:
    meta = header.values
    publish = meta.get("publish")
    if publish:
        publish_at, zone = parse_publish(publish, rules.timezone)
    else:
        publish_at, zone = article.date.astimezone(UTC), rules.timezone
    images: tuple[Image, ...] = ()
    if meta.get("image"):
        width, height, size = image_info(rules.content_dir / meta["image"])
        images = (
            Image(
                path=meta["image"],
                url=f"{site_url}/{meta['image']}",
                alt=meta.get("image-alt", ""),
                width=width,
                height=height,
                bytes=size,
            ),
        )
    testimonial = None
    if meta.get("category") == "testimonials":
        until = meta.get("consent-until")
        testimonial = Testimonial(
            customer=meta.get("customer", ""),
            consent=parse_bool(meta.get("consent", "")) is True,
            consent_until=dateutil.parser.parse(until).date() if until else None,
            rating=int(meta["rating"]) if meta.get("rating") else None,
            store=meta.get("store"),
        )
    url = f"{site_url}/{article.url}"
    return Story(
        slug=article.slug,
        title=meta.get("title") or article.title,
        summary=meta.get("summary") or plain_text(article.content).split("\n\n", 1)[0][:280],
        lang=article.lang,
        region=meta.get("region"),
        category=meta.get("category", "stories"),
        url=url,
        html=article.content,
        text="",  # filled in by completed(), off the build's critical path
        images=images,
        channels=tuple(split_list(meta.get("channels"))),
        publish_at=publish_at,
        timezone=zone,
        variants={
            k.split("-", 1)[1].upper(): v for k, v in meta.items() if k.startswith("headline-")
        },
        offer=meta.get("offer"),
        store=meta.get("store"),
        testimonial=testimonial,
        overrides={k[: -len("-text")]: v for k, v in meta.items() if k.endswith("-text")},
        source=display_path(article.source_path, root),
        content_hash="",  # filled in by completed()
        tags=tuple(str(t) for t in getattr(article, "tags", ())),
        offer_rules=offer_rules(meta, rules.timezone) if meta.get("offer") else None,
    )


def completed(story: Story, root: Path) -> Story:
    """The story with what only the manifest needs: plain text and the source's content hash."""
    digest = hashlib.sha256((root / story.source).read_bytes()).hexdigest()
    return replace(story, text=plain_text(story.html), content_hash=digest)


def manifest_bytes(site_url: str, stories: list[Story], root: Path) -> bytes:
    """The manifest, one story per line: readable, diffable, and written by json's C encoder."""
    ordered = sorted(stories, key=lambda s: (s.publish_at, s.slug))
    lines = ",\n".join(
        json.dumps(completed(s, root).to_json(), ensure_ascii=False, sort_keys=True)
        for s in ordered
    )
    head = f'{{"site_url": {json.dumps(site_url)}, "version": {MANIFEST_VERSION}, "stories": ['
    return f"{head}\n{lines}\n]}}\n".encode()


def json_ld(story: Story, settings: dict[str, Any]) -> str:
    site = {"@type": "Organization", "name": settings.get("SITENAME"), "url": settings["SITEURL"]}
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "inLanguage": story.lang,
        "url": story.url,
        "datePublished": story.publish_at.isoformat(),
        "publisher": site,
    }
    if story.images:
        data["image"] = story.images[0].url
    if story.testimonial:
        stores = STATE.engine.get("stores") or {}
        store = stores.get(story.store or "", {})
        data |= {
            "@type": "Review",
            "name": story.title,
            "reviewBody": story.summary,
            "author": {"@type": "Person", "name": story.testimonial.customer},
            "itemReviewed": {"@type": "LocalBusiness", "name": store.get("name") or site["name"]},
        }
        if story.testimonial.rating:
            data["reviewRating"] = {
                "@type": "Rating",
                "ratingValue": story.testimonial.rating,
                "bestRating": 5,
                "worstRating": 1,
            }
    else:
        data |= {
            "@type": "Article",
            "headline": story.title,
            "description": story.summary,
            "author": site,
            "mainEntityOfPage": story.url,
        }
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def _tracker_url() -> str:
    return str(STATE.engine["tracking"]["base_url"]).rstrip("/")


def qr_url(slug: str) -> str:
    """What a story's QR code holds: the tracker's ``/qr/<slug>``, a tracked link."""
    return f"{_tracker_url()}/qr/{slug}"


def verified_mark(verified: str | None) -> dict[str, str] | None:
    """``Verified: berlin-1 2026-12-01`` (a visit the till recorded) -> the store's name and day."""
    if not verified:
        return None
    store, _, day = verified.partition(" ")
    stores = STATE.engine.get("stores") or {}
    return {"store": (stores.get(store) or {}).get("name") or store, "date": day.strip()}


def theme_data(story: Story, settings: dict[str, Any]) -> dict[str, Any]:
    regions = settings.get("STORYLOOP_REGIONS") or {}
    stores = STATE.engine.get("stores") or {}
    image = story.images[0] if story.images else None
    t = story.testimonial
    return {
        "url": story.url,
        "path": story.url.removeprefix(f"{STATE.site_url}/"),  # for links that honour RELATIVE_URLS
        "region": story.region,
        "region_name": regions.get(story.region or "", story.region),
        "offer": story.offer,
        "store": story.store,
        "store_name": (stores.get(story.store or "") or {}).get("name"),
        # the offer box's QR code is a tracked link of the `site` channel; "get my code" opens
        # the tracker's offer page, where the reader's click (if any) is known
        "qr": QrCode(qr_url(story.slug)) if story.offer else None,
        "claim_url": f"{_tracker_url()}/offer/{story.slug}",
        "image": image
        and {
            "path": image.path,
            "url": image.url,
            "alt": image.alt,
            "width": image.width,
            "height": image.height,
        },
        "testimonial": t and {"customer": t.customer, "rating": t.rating, "store": t.store},
        "jsonld": json_ld(story, settings),
    }


# --------------------------------------------------------------------------- signal handlers


def on_initialized(pelican: Any) -> None:
    """What comes from the settings, once per Pelican instance (``pelican -r`` runs it again
    and again: what belongs to one build is reset in :func:`start_build`)."""
    settings = pelican.settings
    STATE.root = Path(settings["PATH"]).parent
    STATE.site_url = str(settings["SITEURL"]).rstrip("/")
    STATE.output = Path(settings["OUTPUT_PATH"])
    STATE.engine = engine_settings(settings)
    STATE.rules = Rules.from_pelican(settings, STATE.engine, STATE.root)
    paginated = settings["PAGINATED_TEMPLATES"]
    settings["PAGINATED_TEMPLATES"] = {"region": None, **paginated}  # a theme may set its own


def start_build(settings: dict[str, Any]) -> None:
    STATE.stories, STATE.problems, STATE.manifest_child = [], [], None
    # QR codes are kept between builds where Pelican keeps its content: a warm rebuild then
    # draws only the new ones (Pelican writes every page again, each with its code)
    caching = settings.get("CACHE_CONTENT") and settings.get("CACHE_PATH")
    STATE.qr = qrcodes.Codes(
        Path(settings["CACHE_PATH"]) / qrcodes.CACHE_NAME if caching else None,
        load=bool(settings.get("LOAD_CONTENT_CACHE")),
    )
    for stale in STATE.output.glob(f".{MANIFEST_NAME}.*.next"):
        stale.unlink(missing_ok=True)


def on_content_init(content: Any) -> None:
    """Start drawing the QR code of a story with an offer (the offer box shows it) as soon as
    it is read, so the drawing runs beside the rest of the build (a story excluded later just
    leaves its code unused)."""
    if STATE.qr is not None and isinstance(content, Article) and content.metadata.get("offer"):
        STATE.qr.add(qr_url(content.slug))


class QrCode:
    """A story's QR code as the theme writes it: ``{{ sl.qr }}`` is a ``data:`` URI, drawn,
    or waited for, when a page shows it. Holds only the URL, so Pelican can cache it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __str__(self) -> str:
        return STATE.qr.data_uri(self.url) if STATE.qr is not None else ""

    __html__ = __str__


def on_pretaxonomy(generator: ArticlesGenerator) -> None:
    rules, root = STATE.rules, STATE.root
    assert rules is not None and STATE.qr is not None
    articles = list(generator.articles) + list(generator.translations)
    headers = {
        a.source_path: read_header(Path(a.source_path), display_path(a.source_path, root))
        for a in articles
    }
    problems = [p for h in headers.values() for p in validate(h, rules)]
    problems += duplicate_slugs(headers.values(), rules)
    report(problems)
    drop = excluded(problems)
    keep = [a for a in articles if headers[a.source_path].path not in drop]
    generator.articles = [a for a in generator.articles if a in keep]
    generator.translations = [a for a in generator.translations if a in keep]
    if any(p.severity == "error" for p in problems):
        return  # the build fails in on_all_finalized, before any page is written
    for article in keep:
        story = story_from(article, headers[article.source_path], rules, STATE.site_url, root)
        article.storyloop = theme_data(story, generator.settings)
        article.storyloop["verified"] = verified_mark(headers[article.source_path].get("verified"))
        STATE.stories.append(story)
        if story.offer:  # asked for already unless the article came from the cache
            STATE.qr.add(qr_url(story.slug))
    if hasattr(os, "fork") and len(STATE.stories) >= FORK_THRESHOLD:
        STATE.manifest_child = fork_manifest_writer()


def fork_manifest_writer() -> int:
    """Write the manifest in a forked child while this process writes the pages.

    The child writes ``.storyloop-manifest.json.<pid>.next`` only when the manifest changed;
    on_finalized moves it into place, so a build that fails later leaves the old manifest.
    Pelican's console runs a thread, so the child touches no lock that thread may have held at
    the fork: no logging, no ``sys.stderr``; an error goes straight to file descriptor 2.
    """
    pid = os.fork()
    if pid:
        log.debug("manifest: written by child process %d", pid)
        return pid
    status = 1
    try:
        if STATE.qr is not None:
            STATE.qr.let_go()
        write_manifest(f".{MANIFEST_NAME}.{os.getpid()}.next")
        status = 0
    except BaseException:
        os.write(2, f"writing {MANIFEST_NAME} failed:\n{traceback.format_exc()}".encode())
    finally:
        os._exit(status)


def report(problems: list[Problem]) -> None:
    STATE.problems = problems
    for problem in problems:
        (log.error if problem.severity == "error" else log.warning)("%s", problem)


def on_all_finalized(_generators: list[Any]) -> None:
    errors = [p for p in STATE.problems if p.severity == "error"]
    if errors:
        raise ContentInvalid(f"error: {len(errors)} content error(s): the build stopped")


def on_finalized(pelican: Any) -> None:
    codes, STATE.qr = STATE.qr, None
    path = STATE.output / MANIFEST_NAME
    if STATE.manifest_child is None:
        write_manifest(MANIFEST_NAME)
    else:
        pid, STATE.manifest_child = STATE.manifest_child, None
        if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]):
            raise RuntimeError("writing the manifest failed (the error is above)")
        written = path.with_name(f".{MANIFEST_NAME}.{pid}.next")
        if written.exists():
            os.replace(written, path)
    if codes is not None:
        codes.finish(qr_url(s.slug) for s in STATE.stories if s.offer)


def write_manifest(name: str) -> None:
    """Write this build's manifest to ``name`` in the output folder, unless the manifest there
    already says the same."""
    data = manifest_bytes(STATE.site_url, STATE.stories, STATE.root)
    if not same_file(STATE.output / MANIFEST_NAME, data):
        STATE.output.mkdir(parents=True, exist_ok=True)
        write_atomically(STATE.output / name, data)


def same_file(path: Path, data: bytes) -> bool:
    """Whether ``path`` holds ``data``: an unchanged manifest is left alone, so its mtime tells
    watchers (the engine) nothing changed."""
    return path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data


# --------------------------------------------------------------------------- region pages


class RegionGenerator(Generator):  # type: ignore[misc]
    """Writes ``regions/<key>.html`` for every region in ``STORYLOOP_REGIONS``."""

    def generate_context(self) -> None:
        regions = self.settings.get("STORYLOOP_REGIONS") or {}
        site = str(self.settings["SITEURL"]).rstrip("/")
        self.context["storyloop_regions"] = [
            (key, name, f"{site}/regions/{key}.html") for key, name in regions.items()
        ]

    def generate_output(self, writer: Any) -> None:
        regions = self.settings.get("STORYLOOP_REGIONS") or {}
        if not regions:
            return
        try:
            template = self.get_template("region")
        except PelicanTemplateNotFound:
            log.warning("theme has no region.html template: region pages not written")
            return
        articles = self.context.get("articles", [])
        for key, name in regions.items():
            here = [a for a in articles if getattr(a, "storyloop", {}).get("region") == key]
            writer.write_file(
                f"regions/{key}.html",
                template,
                self.context,
                region=key,
                region_name=name,
                articles=here,
                url=f"regions/{key}.html",
                template_name="region",  # paginated like the index (DEFAULT_PAGINATION)
                relative_urls=self.settings["RELATIVE_URLS"],
            )


def get_generators(pelican: Any) -> type[Generator]:
    """Asked at the start of every build, before anything is read."""
    start_build(pelican.settings)
    return RegionGenerator


def register() -> None:
    signals.readers_init.connect(use_reader)
    signals.initialized.connect(on_initialized)
    signals.content_object_init.connect(on_content_init)
    signals.article_generator_pretaxonomy.connect(on_pretaxonomy)
    signals.all_generators_finalized.connect(on_all_finalized)
    signals.get_generators.connect(get_generators)
    signals.finalized.connect(on_finalized)


__all__ = ["MANIFEST_NAME", "ContentInvalid", "plain_text", "register"]
