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
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pelican import signals
from pelican.contents import Article
from pelican.generators import ArticlesGenerator, Generator, PelicanTemplateNotFound
from pelican.urlwrappers import URLWrapper
from PIL import Image as PILImage

from publisher import build_checks, build_manifest, pelican_theme, qrcodes, ratings, writer
from publisher.consent.build import withdrawn as withdrawn_consent
from publisher.content import (
    MARKDOWN_SUFFIXES,
    Header,
    Parsed,
    Problem,
    Rules,
    StoryFields,
    duplicate_slugs,
    excluded,
    header_from,
    parse,
    read_header,
    split_list,
    validate,
)
from publisher.model import Image, Story, Testimonial, Translation
from publisher.reader import use_reader
from publisher.sanitize import clean_html, strip_tags
from publisher.settings import EngineSettings, Store, engine_settings

log = logging.getLogger(__name__)
MANIFEST_NAME = "storyloop-manifest.json"
BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|blockquote|pre|table|ul|ol)>", re.I)
LINE_END = re.compile(r"</tr>|<br\s*/?>", re.I)
CELL_END = re.compile(r"</t[dh]>", re.I)
PRE = re.compile(r"(<pre[\s>].*?</pre>)", re.I | re.S)
CELL_SPACE = re.compile(r"[ \t]*\|[ \t]*")
GAPS = re.compile(r"\n{3,}")


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
    settings: dict[str, Any] = field(default_factory=dict)  # this build's Pelican settings
    engine: EngineSettings = field(default_factory=EngineSettings)
    problems: list[Problem] = field(default_factory=list)
    check_only: bool = False  # `storyloop check`: read and validate, draw and write nothing
    checked: list[Header] = field(default_factory=list)  # what check validated, in order
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path -> its channels
    unread: list[Problem] = field(default_factory=list)  # posts Pelican skipped, and why
    content_path: Path = Path("content")
    # one Author and one Category object for each name (see :func:`share_names`)
    names: dict[tuple[type, str], Any] = field(default_factory=dict)
    # width, height and bytes of each picture by its path (see :func:`image_info`)
    image_sizes: dict[str, tuple[int, int, int]] = field(default_factory=dict)


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
    text = html.unescape(strip_tags(marked))
    if "|" in text:  # the pattern is tried at every character: most stories have no table
        text = CELL_SPACE.sub(" | ", text)
    text = "\n".join(line.strip().removesuffix(" |").strip() for line in text.splitlines())
    # the pattern has no fixed start to search for: tried at every character of the text, it
    # was a quarter of a body's plain text (10 µs), mostly for a body with no such gap
    return (GAPS.sub("\n\n", text) if "\n\n\n" in text else text).strip()


def image_info(folder: Path, name: str) -> tuple[int, int, int]:
    """Width, height and bytes of the picture ``name`` in ``folder``, read once a build. A
    string key: a ``Path`` made and hashed for every story cost more than the lookup."""
    path = f"{folder}{os.sep}{name}"
    found = STATE.image_sizes.get(path)
    if found is None:
        with PILImage.open(path) as img:
            width, height = img.size
        found = STATE.image_sizes[path] = (width, height, os.stat(path).st_size)
    return found


# --------------------------------------------------------------------------- per article

RST_FIELD = re.compile(r"^\s*:([^:\s][^:]*):")
PELICAN_FIELDS = frozenset(
    {"title", "date", "modified", "slug", "lang", "summary", "category", "tags", "author",
     "authors", "status", "template", "save_as", "url", "translation", "reader"}
)  # fmt: skip


def header_of(content: Any, root: Path) -> Header:
    """The metadata Pelican read for ``content`` (whatever its reader) as the validator's
    :class:`Header`, with the line of each field where the source shows it (Markdown, rST)."""
    display = display_path(content.source_path, root)
    source = Path(content.source_path)
    lines: dict[str, int] = {}
    names: dict[str, str] = {}
    values = {key: metadata_text(value) for key, value in content.metadata.items()}
    if source.suffix in MARKDOWN_SUFFIXES:
        # the file itself shows what Pelican's metadata cannot: each field's line, a NUL or a
        # field given twice, and the body as written (script links in it are warned about)
        read = read_header(source, display)
        return replace(read, values=values)
    if source.suffix in (".rst", ".rest"):
        lines, names = rst_field_lines(source)
    return Header(path=display, values=values, lines=lines, names=names)


# what the checks across files read of a header: content.duplicate_slugs (the slug, or the
# title it is made from, and the slug's line) and consent.build.withdrawn (the consent's line)
CROSS_FILE = ("slug", "title", "consent")


def cross_file(header: Header) -> Header:
    """``header`` with only the fields :data:`CROSS_FILE` names."""
    return Header(
        path=header.path,
        values={k: header.values[k] for k in CROSS_FILE if k in header.values},
        lines={k: header.lines[k] for k in CROSS_FILE if k in header.lines},
    )


def rst_field_lines(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    lines: dict[str, int] = {}
    names: dict[str, str] = {}
    with path.open(encoding="utf-8-sig") as fh:
        for number, text in enumerate(fh, start=1):
            match = RST_FIELD.match(text)
            if match and match.group(1).lower() not in lines:
                lines[match.group(1).lower()] = number
                names[match.group(1).lower()] = match.group(1)
            if number > 200:
                break
    return lines, names


def metadata_text(value: Any) -> str:
    """A metadata value as the editor wrote it: dates in ISO form, lists joined."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):  # tags, authors; or a Markdown field on several lines
        text = all(isinstance(v, str) for v in value)
        return " ".join(value) if text else ", ".join(str(v) for v in value)
    return str(value)


def pelican_fields(settings: dict[str, Any]) -> frozenset[str]:
    """Fields Pelican itself fills in or that the settings give every post, which never warn."""
    names = set(PELICAN_FIELDS) | {k.lower() for k in settings.get("DEFAULT_METADATA") or {}}
    for key in ("FILENAME_METADATA", "PATH_METADATA"):
        if settings.get(key):
            names |= {g.lower() for g in re.compile(settings[key]).groupindex}
    for meta in (settings.get("EXTRA_PATH_METADATA") or {}).values():
        names |= {k.lower() for k in meta}
    return frozenset(names)


def named_channels(header: Header) -> tuple[str, ...] | None:
    """The Channels a header names (none when empty), None when it names none."""
    return tuple(split_list(header.get("channels"))) if "channels" in header.values else None


def routed(named: tuple[str, ...] | None, engine: EngineSettings, category: Any) -> tuple[str, ...]:
    """Where a story goes: the Channels it names, else its category's rule, else
    ``default_channels``. An archive turned on without rules goes nowhere."""
    if named is not None:
        return named
    rules = engine.category_channels
    for key in (getattr(category, "name", None), getattr(category, "slug", None)):
        if key is not None and key in rules:
            return tuple(rules[key])
    return engine.default_channels


def story_from(
    article: Article, fields: StoryFields, rules: Rules, site_url: str, source: str
) -> Story:
    """One article as the manifest's story, from the fields its header parsed into and its
    file's path as shown (:func:`display_path`); its translations are added by the caller."""
    if fields.publish_at is not None:
        publish_at, zone = fields.publish_at, fields.timezone
    else:
        publish_at, zone = article.date.astimezone(UTC), rules.timezone
    images: tuple[Image, ...] = ()
    if fields.image:
        width, height, size = image_info(rules.content_dir, fields.image)
        images = (
            Image(
                path=fields.image,
                url=f"{site_url}/{fields.image}",
                alt=fields.image_alt,
                width=width,
                height=height,
                bytes=size,
            ),
        )
    url = f"{site_url}/{article.url}"
    summary = plain_text(fields.summary) if fields.summary else ""
    if not summary:
        # imported when a story has no summary only: channels.text brings regex and
        # markdown-it, a tenth of a second of every build's start (a warm one's 5 %)
        from channels.text import auto_summary

        summary = auto_summary(article.content)
    return Story(
        slug=article.slug,
        title=str(article.title),
        summary=summary,
        lang=article.lang,
        region=fields.region,
        category=str(article.category),
        url=url,
        html=article.content,
        text="",  # filled in by completed(), for a line the manifest encodes
        images=images,
        channels=routed(fields.channels, STATE.engine, article.category),
        publish_at=publish_at,
        timezone=zone,
        variants=fields.variants,  # the parse's own, let go with it: not copied
        offer=fields.offer,
        store=fields.store,
        testimonial=fields.testimonial,
        overrides=fields.overrides,
        source=source,
        content_hash="",  # filled in by the caller, with the translations
        tags=tuple(str(t) for t in getattr(article, "tags", ())),
        offer_rules=fields.offer_rules,
    )


def translation_of(story: Story) -> Translation:
    return Translation(
        lang=story.lang,
        title=story.title,
        summary=story.summary,
        url=story.url,
        html=story.html,
        text="",  # filled in by completed()
        images=story.images,
        variants=story.variants,
        overrides=story.overrides,
        source=story.source,
    )


def content_hash(story: Story, root: Path, digests: dict[str, str] | None = None) -> str:
    """The hash of a story's source and its translations' (editing any language is an edit of
    the story). ``digests``: the hash of each file the build read already, by its shown path."""
    if not story.translations and digests and story.source in digests:
        return digests[story.source]
    digest = hashlib.sha256((root / story.source).read_bytes())
    for t in story.translations:
        digest.update((root / t.source).read_bytes())
    return digest.hexdigest()


def completed(story: Story) -> Story:
    """The story with what only the manifest needs: the plain text of it and its translations
    (made only for a line that is encoded, see :mod:`publisher.build_manifest`)."""
    translations = tuple(replace(t, text=plain_text(t.html)) for t in story.translations)
    return replace(story, text=plain_text(story.html), translations=translations)


def manifest_line(story: Story) -> bytes:
    """One story's line of the manifest, by json's C encoder."""
    data = completed(story).to_json()
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode()


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
        store = STATE.engine.stores.get(story.store or "")
        shop = store.name if store and store.named else site["name"]
        data |= {
            "@type": "Review",
            "name": story.title,
            "reviewBody": story.summary,
            "author": {"@type": "Person", "name": story.testimonial.customer},
            "itemReviewed": {"@type": "LocalBusiness", "name": shop},
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
    # as Jinja's tojson does: no "<", ">" or "&" of an editor's text can end the script element
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _tracker_url() -> str:
    return STATE.engine.tracking.base_url.rstrip("/")


def qr_url(slug: str) -> str:
    """What a story's QR code holds: the tracker's ``/qr/<slug>``, a tracked link."""
    return f"{_tracker_url()}/qr/{slug}"


def verified_mark(verified: str | None) -> dict[str, str] | None:
    """``Verified: berlin-1 2026-12-01`` (a visit the till recorded) -> the store's name and day."""
    if not verified:
        return None
    store, _, day = verified.partition(" ")
    found = STATE.engine.stores.get(store)
    return {"store": found.name if found and found.named else store, "date": day.strip()}


def _named(store: Store | None) -> str | None:
    return store.name if store and store.named else None


@dataclass(frozen=True, slots=True)
class ThemeData:
    """What the plugin computed for one story's pages: ``article.storyloop`` (``sl.offer``,
    ``sl.image.url``... in a theme). A record without a ``__dict__``, not a dict: a large
    build keeps one for every story, and this is a third of a dict's size."""

    url: str
    path: str  # the story's address under the site, for links that honour RELATIVE_URLS
    region: str | None
    region_name: str | None
    offer: str | None
    store: str | None
    store_name: str | None
    # the offer box's QR code is a tracked link of the `site` channel; "get my code" opens
    # the tracker's offer page, where the reader's click (if any) is known
    qr: QrCode | None
    claim_url: str
    image: Image | None
    testimonial: Testimonial | None
    jsonld: JsonLd
    verified: dict[str, str] | None  # a visit the till recorded (originals only)


def theme_data(
    story: Story, settings: dict[str, Any], verified: dict[str, str] | None = None
) -> ThemeData:
    regions = settings.get("STORYLOOP_REGIONS") or {}
    return ThemeData(
        url=story.url,
        path=story.url.removeprefix(f"{STATE.site_url}/"),
        region=story.region,
        region_name=regions.get(story.region or "", story.region),
        offer=story.offer,
        store=story.store,
        store_name=_named(STATE.engine.stores.get(story.store or "")),
        qr=QrCode(qr_url(story.slug)) if story.offer else None,
        claim_url=f"{_tracker_url()}/offer/{story.slug}",
        image=story.images[0] if story.images else None,
        testimonial=story.testimonial,
        jsonld=JsonLd(story, settings),
        verified=verified,
    )


class JsonLd:
    """A story page's schema.org data (``{{ sl.jsonld }}``), made as the page is written. Kept
    as text from the checks to the page, it was the largest thing the plugin held per story and
    a fifth of what it added to each article in Pelican's cache. Hashed by the story's address
    (:func:`publisher.writer.page_inputs`: all it is made of is in the page's key already)."""

    __slots__ = ("settings", "story", "url")

    def __init__(self, story: Story, settings: dict[str, Any]) -> None:
        self.story, self.settings, self.url = story, settings, story.url

    def __str__(self) -> str:
        return json_ld(self.story, self.settings)

    __html__ = __str__

    def __reduce__(self) -> tuple[type[str], tuple[()]]:
        return str, ()  # not kept in Pelican's cache: every build sets each article's anew


# --------------------------------------------------------------------------- signal handlers


def on_initialized(pelican: Any) -> None:
    """What comes from the settings, once per Pelican instance (``pelican -r`` runs it again
    and again: what belongs to one build is reset in :func:`start_build`)."""
    settings = pelican.settings
    content, here = Path(settings["PATH"]).resolve(), Path.cwd().resolve()
    STATE.root = here if content.is_relative_to(here) else content.parent
    STATE.content_path = Path(settings["PATH"])
    for name in ("pelican.generators", "pelican.contents"):
        if SKIPPED not in logging.getLogger(name).handlers:
            logging.getLogger(name).addHandler(SKIPPED)
    STATE.site_url = str(settings["SITEURL"]).rstrip("/")
    STATE.output = Path(settings["OUTPUT_PATH"])
    STATE.engine = engine_settings(settings)
    rules = Rules.from_pelican(settings, STATE.engine, STATE.root)
    STATE.rules = replace(rules, fields=rules.fields | pelican_fields(settings))
    writer.cache_templates(settings)
    paginated = settings["PAGINATED_TEMPLATES"]
    settings["PAGINATED_TEMPLATES"] = {"region": None, **paginated}  # a theme may set its own


def start_build(settings: dict[str, Any]) -> None:
    STATE.stories, STATE.problems, STATE.settings = [], [], settings
    STATE.checked, STATE.routes, STATE.unread, STATE.names = [], {}, [], {}
    STATE.image_sizes = {}  # a picture replaced between two builds of one process (pelican -r)
    # QR codes are kept between builds where Pelican keeps its content: a warm rebuild then
    # draws only the new ones (Pelican writes every page again, each with its code)
    caching = settings.get("CACHE_CONTENT") and settings.get("CACHE_PATH")
    STATE.qr = qrcodes.Codes(
        Path(settings["CACHE_PATH"]) / qrcodes.CACHE_NAME if caching else None,
        load=bool(settings.get("LOAD_CONTENT_CACHE")),
    )
    for stale in STATE.output.glob(f".{MANIFEST_NAME}.*.next"):
        stale.unlink(missing_ok=True)


def sanitise(content: Any) -> None:
    """Pass a story's or page's body and summary through the one allow-list, once (Pelican
    caches the cleaned object; one cached by an older version is cleaned when it is used)."""
    if getattr(content, "_storyloop_clean", False):
        return
    content._content = clean_html(getattr(content, "_content", "") or "")
    given = content.metadata.get("summary")
    summary = getattr(content, "_summary", None)
    if summary:
        content._summary = clean_html(summary)
    if isinstance(given, str):  # mostly the same string as _summary: cleaned once
        content.metadata["summary"] = content._summary if given is summary else clean_html(given)
    content._storyloop_clean = True


def share_names(content: Any) -> None:
    """Give a post the build's one Author or Category object of each name. Pelican makes new
    ones for every post (the ``AUTHOR`` setting's for each, its category's from the header),
    equal to one another; kept per post, in memory and in its cache, they were about a tenth
    of what a large build held for each story."""
    for key in ("author", "category"):
        mine = getattr(content, key, None)
        if isinstance(mine, URLWrapper):
            one = STATE.names.setdefault((type(mine), mine.name), mine)
            setattr(content, key, one)
            if content.metadata.get(key) is mine:
                content.metadata[key] = one
    authors = getattr(content, "authors", None)
    if isinstance(authors, list):
        content.authors = [STATE.names.setdefault((type(a), a.name), a) for a in authors]


def on_content_init(content: Any) -> None:
    """Clean the HTML; start drawing the QR code of a story with an offer (the offer box shows
    it) as soon as it is read, so the drawing runs beside the rest of the build (a story
    excluded later just leaves its code unused)."""
    sanitise(content)
    share_names(content)
    if STATE.check_only or STATE.qr is None:
        return
    if isinstance(content, Article) and content.metadata.get("offer"):
        STATE.qr.add(qr_url(content.slug))


class QrCode:
    """A story's QR code as the theme writes it: ``{{ sl.qr }}`` is a ``data:`` URI, drawn,
    or waited for, when a page shows it. Holds only the URL, so Pelican can cache it."""

    __slots__ = ("url",)  # no __dict__ for pickling the article into Pelican's cache to make

    def __init__(self, url: str) -> None:
        self.url = url

    def __str__(self) -> str:
        return STATE.qr.data_uri(self.url) if STATE.qr is not None else ""

    __html__ = __str__


def on_pretaxonomy(generator: ArticlesGenerator) -> None:
    """Validate every article Pelican read (originals and translations, any reader), drop the
    testimonials without consent, and turn the rest into stories, each with its translations."""
    rules, root = STATE.rules, STATE.root
    assert rules is not None and STATE.qr is not None
    originals, translations = list(generator.articles), list(generator.translations)
    headers: dict[str, Header] = {}
    parsed: dict[str, Parsed] = {}
    digests: dict[str, str] = {}  # each file's SHA-256 by its shown path, for the manifest
    STATE.routes = {}
    cache = checks_cache(generator.settings, rules)
    for number, article in enumerate(originals + translations):
        if cache is None:  # `storyloop check` lists the whole headers it read
            header = header_of(article, root)
            found = build_checks.Checked("", parse(header, rules), header, named_channels(header))
        else:
            # a build keeps of each header only what the checks across files read (a whole
            # header each, its body the file's text, was the largest part it held per story)
            found = checked(article, root, rules, cache, digests)
        parsed[article.source_path] = found.parsed  # each header read and parsed once
        if number < len(originals):
            STATE.routes[found.slim.path] = routed(found.named, STATE.engine, article.category)
        headers[article.source_path] = found.slim
    if cache is not None:
        cache.save()
        cache = None  # its checks are in `parsed` too, let go story by story below
    STATE.checked = list(headers.values()) if STATE.check_only else []
    skipped = skipped_by_pelican(generator, rules)
    said = {p.path for p in skipped}  # the same post as Pelican's own skip line: said once
    problems = [p for p in STATE.unread if p.path not in said] + skipped
    problems += [p for result in parsed.values() for p in result.problems]
    in_order = sorted((headers[a.source_path] for a in originals), key=_path)
    problems += duplicate_slugs(in_order, rules)
    problems += withdrawn_consent(in_order, STATE.engine, root)
    report(problems)
    for article in originals + translations:
        sanitise(article)  # read from Pelican's cache: cleaned already, unless cached before
    drop = excluded(problems)

    def kept(article: Article) -> bool:
        return headers[article.source_path].path not in drop

    order = generator.settings["ARTICLE_ORDER_BY"]  # and the same order in every build
    generator.articles = writer.in_stable_order([a for a in originals if kept(a)], order)
    generator.translations = [a for a in translations if kept(a)]
    for article in generator.articles:
        article.translations = [t for t in article.translations if kept(t)]
    if STATE.check_only or any(p.severity == "error" for p in problems):
        return  # a failing build stops in on_all_finalized, before any page is written

    def shown(article: Article) -> str:
        return headers[article.source_path].path  # display_path's, made once by the checks

    def fields_of(article: Article) -> StoryFields:
        # each parse let go once its story is made: what it held is reused for the stories'
        # records, instead of the build holding both until the last story is made
        found = parsed.pop(article.source_path).fields
        assert found is not None  # no error was found, so every header parsed
        return found

    for article in generator.articles:
        fields = fields_of(article)
        story = story_from(article, fields, rules, STATE.site_url, shown(article))
        versions = [
            story_from(t, fields_of(t), rules, STATE.site_url, shown(t))
            for t in article.translations
        ]
        story = replace(story, translations=tuple(translation_of(v) for v in versions))
        story = replace(story, content_hash=content_hash(story, root, digests))
        verified = verified_mark(fields.verified)
        article.storyloop = theme_data(story, generator.settings, verified)
        for translated, version in zip(article.translations, versions, strict=True):
            translated.storyloop = theme_data(version, generator.settings)
        STATE.stories.append(story)
        if story.offer:  # asked for already unless the article came from the cache
            STATE.qr.add(qr_url(story.slug))
    generator.context["storyloop_ratings"] = ratings.for_theme(
        STATE.stories, STATE.engine.stores, STATE.site_url, date.today()
    )


def checks_cache(settings: dict[str, Any], rules: Rules) -> build_checks.Cache | None:
    """Where the checks of unchanged files are kept between builds (none for ``storyloop
    check``, which reads whole headers; nothing kept unless Pelican caches content)."""
    if STATE.check_only:
        return None
    if not (settings.get("CACHE_CONTENT") and settings.get("CACHE_PATH")):
        return build_checks.Cache(None, load=False, inputs=None)
    return build_checks.Cache(
        Path(settings["CACHE_PATH"]) / build_checks.CACHE_NAME,
        load=bool(settings.get("LOAD_CONTENT_CACHE")),
        inputs=[build_checks.rules_key(rules), writer.project_code()],
    )


def checked(
    article: Article, root: Path, rules: Rules, cache: build_checks.Cache, digests: dict[str, str]
) -> build_checks.Checked:
    """One article's checks: the file is read once (its hash is the manifest's too) and, when
    everything the checks read is as in the last build, its parse comes from the cache."""
    source = Path(article.source_path)
    display = display_path(article.source_path, root)  # of a str: a Path's is ten times dearer
    data = None
    if source.suffix in MARKDOWN_SUFFIXES:
        try:
            data = source.read_bytes()
        except OSError:
            data = None  # header_of records it as the file's problem
    if data is None:
        header = header_of(article, root)
        slim, named = cross_file(header), named_channels(header)
        return build_checks.Checked("", parse(header, rules), slim, named)
    digest = hashlib.sha256(data).hexdigest()
    digests[display] = digest
    values = {key: metadata_text(value) for key, value in article.metadata.items()}
    image = cache.image_state(rules, values.get("image") or None)
    key = cache.key(display, digest, values, image)
    found = cache.get(article.source_path, key)
    if found is None:
        header = replace(header_from(data, Header(path=display)), values=values)
        slim, named = cross_file(header), named_channels(header)
        found = build_checks.Checked(key, parse(header, rules), slim, named)
    cache.put(article.source_path, found)
    return found


def skipped_by_pelican(generator: ArticlesGenerator, rules: Rules) -> list[Problem]:
    """The stories Pelican could not read or would not write (it logs its reason and goes on):
    what our own reading finds wrong with each, or one error saying it was skipped, so that a
    story never vanishes from a build that passes."""
    problems: list[Problem] = []
    for relative, content in generator.context.get("generated_content", {}).items():
        if content is not None or not relative.endswith(MARKDOWN_SUFFIXES):
            continue
        path = Path(generator.path) / relative
        header = read_header(path, display_path(path, STATE.root))
        found = [p for p in validate(header, rules) if p.severity == "error"]
        problems += found or [
            Problem(
                header.path,
                1,
                "File",
                "Pelican skipped this story (its reason is above)",
                "a story Pelican can build",
            )
        ]
    return problems


def _path(header: Header) -> str:
    return header.path


class SkippedPosts(logging.Handler):
    """Pelican skips a post it cannot read (a date it cannot parse, no date) with one bare
    line and goes on. This handler turns that line into the validator's problems for the file
    (``path:line: Date: ...``), which then fail the build as any content error does."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if not message.startswith(("Could not process", "Skipping")) or not record.args:
            return
        first = record.args[0] if isinstance(record.args, tuple) else None
        source = getattr(first, "source_path", first)
        if not isinstance(source, str):
            return
        path = Path(source) if os.path.isabs(source) else STATE.content_path / source
        if not path.is_file() or STATE.rules is None:
            return
        display = display_path(path, STATE.root)
        found: list[Problem] = []
        if path.suffix in MARKDOWN_SUFFIXES:
            found = [p for p in validate(read_header(path, display), STATE.rules)]
            found = [p for p in found if p.severity == "error"]
        if not found:
            text = " ".join(record.getMessage().split())
            found = [Problem(display, 1, "File", text, "a post Pelican can read")]
        record.storyloop = True  # `storyloop check` reports the problems instead
        STATE.unread += found


SKIPPED = SkippedPosts()


def report(problems: list[Problem]) -> None:
    STATE.problems = problems
    if STATE.check_only:
        return  # `storyloop check` prints them itself
    for problem in problems:
        (log.error if problem.severity == "error" else log.warning)("%s", problem)


def on_all_finalized(_generators: list[Any]) -> None:
    errors = [p for p in STATE.problems if p.severity == "error"]
    if errors:
        raise ContentInvalid(f"error: {len(errors)} content error(s): the build stopped")


def on_finalized(pelican: Any) -> None:
    writer.finish()
    codes, STATE.qr = STATE.qr, None
    write_manifest()
    if codes is not None:
        codes.finish(qr_url(s.slug) for s in STATE.stories if s.offer)


def write_manifest() -> None:
    """Write this build's manifest after its pages, updated in place where Pelican caches
    content (:mod:`publisher.build_manifest`)."""
    settings = STATE.settings
    caching = settings.get("CACHE_CONTENT") and settings.get("CACHE_PATH")
    shared = build_manifest.shared_key(settings)
    ordered = sorted(STATE.stories, key=lambda s: (s.publish_at, s.slug))
    done = build_manifest.write(
        STATE.output,
        MANIFEST_NAME,
        STATE.site_url,
        [(s, build_manifest.record_key(s, shared)) for s in ordered],
        manifest_line,
        Path(settings["CACHE_PATH"]) if caching else None,
    )
    log.debug("manifest: %s", done)


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
            here = [
                a for a in articles if getattr(getattr(a, "storyloop", None), "region", "") == key
            ]
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


def _region(article: Any) -> str | None:
    return getattr(getattr(article, "storyloop", None), "region", None)


def get_generators(pelican: Any) -> type[Generator]:
    """Asked at the start of every build, before anything is read."""
    start_build(pelican.settings)
    return RegionGenerator


def register() -> None:
    pelican_theme.register()  # the theme's labels in each page's language
    signals.readers_init.connect(use_reader)
    signals.initialized.connect(on_initialized)
    signals.content_object_init.connect(on_content_init)
    signals.article_generator_pretaxonomy.connect(on_pretaxonomy)
    signals.all_generators_finalized.connect(on_all_finalized)
    signals.get_generators.connect(get_generators)
    signals.get_writer.connect(writer.get_writer)  # unchanged pages are not written again
    signals.finalized.connect(on_finalized)


__all__ = ["MANIFEST_NAME", "ContentInvalid", "plain_text", "register"]
