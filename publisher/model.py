"""The content model as the engine sees it: stories read from the build manifest.

The manifest (``output/storyloop-manifest.json``) is the one boundary between the Pelican build
and the engine; :func:`publisher.manifest.load_manifest` is the only way the engine reads
content. This module imports no other part of Storyloop: channel adapters read these types,
and ``channels`` may depend on nothing else of the engine (an import-linter contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")


@dataclass(frozen=True)
class Image:
    path: str  # path under content/, e.g. "images/xiamen-kitchen.jpg"
    url: str  # absolute URL on the site
    alt: str
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class Testimonial:
    customer: str
    consent: bool
    consent_until: date | None
    rating: int | None
    store: str | None


@dataclass(frozen=True)
class Translation:
    """The same story in another language (Pelican: same slug, another ``Lang``): what a
    channel posting that language needs. Time, channels, offer and variants' letters stay the
    story's."""

    lang: str
    title: str
    summary: str
    url: str
    html: str
    text: str
    images: tuple[Image, ...]
    variants: Mapping[str, str]
    overrides: Mapping[str, str]
    source: str

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["images"] = [asdict(i) for i in self.images]
        data["variants"] = dict(self.variants)
        data["overrides"] = dict(self.overrides)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Translation:
        return cls(
            **{
                **data,
                "images": tuple(Image(**i) for i in data.get("images", ())),
                "variants": dict(data.get("variants", {})),
                "overrides": dict(data.get("overrides", {})),
            }
        )


@dataclass(frozen=True)
class OfferRules:
    """Where, until when and how often a story's offer may be redeemed (the editor's
    ``Offer-Stores``, ``Offer-Until``, ``Offer-Limit``); what is not written is left to the
    defaults the till applies: the stores of the story's region, no end, one use per personal
    code."""

    stores: tuple[str, ...] = ()
    until: datetime | None = None  # the offer ends at this instant (UTC)
    per_code: int | None = None
    per_customer: int | None = None
    total: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "stores": list(self.stores),
            "until": self.until.isoformat().replace("+00:00", "Z") if self.until else None,
            "per_code": self.per_code,
            "per_customer": self.per_customer,
            "total": self.total,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OfferRules:
        until = data.get("until")
        return cls(
            stores=tuple(data.get("stores") or ()),
            until=datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None,
            per_code=data.get("per_code"),
            per_customer=data.get("per_customer"),
            total=data.get("total"),
        )


@dataclass(frozen=True)
class Story:
    slug: str
    title: str
    summary: str  # plain text
    lang: str
    region: str | None
    category: str  # the site's category name; a testimonial is a story with ``testimonial``
    url: str  # canonical absolute URL
    html: str  # rendered article body
    text: str  # plain text of the body, paragraphs separated by blank lines
    images: tuple[Image, ...]
    channels: tuple[str, ...]
    publish_at: datetime  # timezone-aware, UTC
    timezone: str  # IANA zone the editor wrote Publish in (posting windows use it)
    variants: Mapping[str, str]  # {"A": headline, "B": headline}; empty when none
    offer: str | None
    store: str | None
    testimonial: Testimonial | None
    overrides: Mapping[str, str]  # channel name -> text written by the editor for that channel
    source: str  # content file, relative to the site root
    content_hash: str
    tags: tuple[str, ...] = field(default=())
    translations: tuple[Translation, ...] = field(default=())
    offer_rules: OfferRules | None = None  # only when the editor wrote an Offer-* field

    def in_lang(self, lang: str | None) -> Story:
        """The story as a channel set to post ``lang`` sees it: its translation into that
        language when there is one, else the story itself (``None``: the story's language)."""
        if not lang or lang == self.lang:
            return self
        wanted = [t for t in self.translations if t.lang == lang]
        wanted = wanted or [t for t in self.translations if t.lang.split("_")[0] == lang]
        if not wanted:
            return self
        t = wanted[0]
        return replace(
            self,
            lang=t.lang,
            title=t.title,
            summary=t.summary,
            url=t.url,
            html=t.html,
            text=t.text,
            images=t.images or self.images,
            variants=t.variants or self.variants,
            overrides=t.overrides,
            source=t.source,
        )

    def headline(self, variant: str | None) -> str:
        """The headline for a variant ("A", "B", ...); the title when there is none."""
        if variant and variant in self.variants:
            return self.variants[variant]
        return self.title

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: no deep copies
        data["publish_at"] = self.publish_at.isoformat().replace("+00:00", "Z")
        data["images"] = [asdict(i) for i in self.images]
        data["channels"] = list(self.channels)
        data["tags"] = list(self.tags)
        if self.offer_rules is None:
            del data["offer_rules"]
        else:
            data["offer_rules"] = self.offer_rules.to_json()
        data["variants"] = dict(self.variants)
        data["overrides"] = dict(self.overrides)
        if self.translations:  # only then: a story in one language reads as before
            data["translations"] = [t.to_json() for t in self.translations]
        else:
            del data["translations"]
        if self.testimonial:
            t = asdict(self.testimonial)
            t["consent_until"] = (
                self.testimonial.consent_until.isoformat()
                if self.testimonial.consent_until
                else None
            )
            data["testimonial"] = t
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Story:
        t = data.get("testimonial")
        testimonial = None
        if t:
            until = t.get("consent_until")
            testimonial = Testimonial(
                customer=t["customer"],
                consent=bool(t["consent"]),
                consent_until=date.fromisoformat(until) if until else None,
                rating=t.get("rating"),
                store=t.get("store"),
            )
        return cls(
            slug=data["slug"],
            title=data["title"],
            summary=data["summary"],
            lang=data["lang"],
            region=data.get("region"),
            category=data["category"],
            url=data["url"],
            html=data["html"],
            text=data["text"],
            images=tuple(_image(i) for i in data.get("images", ())),
            channels=tuple(data.get("channels", ())),
            publish_at=datetime.fromisoformat(data["publish_at"].replace("Z", "+00:00")),
            timezone=data["timezone"],
            variants=dict(data.get("variants", {})),
            offer=data.get("offer"),
            store=data.get("store"),
            testimonial=testimonial,
            overrides=dict(data.get("overrides", {})),
            source=data["source"],
            content_hash=data["content_hash"],
            tags=tuple(data.get("tags", ())),
            translations=tuple(Translation.from_json(t) for t in data.get("translations", ())),
            offer_rules=OfferRules.from_json(data["offer_rules"])
            if data.get("offer_rules")
            else None,
        )


def _image(data: Mapping[str, Any]) -> Image:
    """An image entry whose path stays inside content/: channels upload what it names."""
    path = str(data["path"])
    parts = path.replace("\\", "/").split("/")
    if (
        not path
        or path.startswith(("/", "\\"))
        or ".." in parts
        or "\x00" in path
        or ":" in parts[0]
    ):
        raise ValueError(f"image path {path[:80]!r} leaves the content folder")
    return Image(**data)


@dataclass(frozen=True)
class Manifest:
    version: int
    site_url: str
    stories: tuple[Story, ...]

    def by_slug(self) -> dict[str, Story]:
        return {s.slug: s for s in self.stories}

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "site_url": self.site_url,
            "stories": [s.to_json() for s in self.stories],
        }
