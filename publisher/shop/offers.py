"""Offers as the till and the reader's pages see them: the story's offer text, title and page
from the build manifest, and the rules that apply (the editor's, else the defaults).

The manifest is read again whenever the build replaces it, so a new ``Offer-Until`` holds from
the next redemption on without restarting the tracker.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from publisher.errors import ManifestError
from publisher.manifest import load_manifest
from publisher.model import Story
from publisher.shop.stores import Store


@dataclass(frozen=True)
class Offer:
    """One story's offer with its rules in force."""

    story: str
    text: str
    title: str | None  # None when the manifest does not know the story (yet)
    url: str | None
    lang: str | None
    region: str | None
    stores: tuple[str, ...]  # where it may be redeemed; empty: anywhere
    until: datetime | None
    per_code: int | None  # None: no limit (personal codes default to 1)
    per_customer: int | None
    total: int | None


def default_stores(
    region: str | None, store: str | None, stores: Mapping[str, Store]
) -> tuple[str, ...]:
    """The stores of the story's region, plus the story's own ``Store``."""
    found = [s.id for s in stores.values() if region and s.region == region]
    if store and store in stores and store not in found:
        found.append(store)
    return tuple(found)


def offer_of(story: Story, stores: Mapping[str, Store]) -> Offer:
    rules = story.offer_rules
    written = rules.stores if rules and rules.stores else ()
    return Offer(
        story=story.slug,
        text=story.offer or "",
        title=story.title,
        url=story.url,
        lang=story.lang,
        region=story.region,
        stores=written or default_stores(story.region, story.store, stores),
        until=rules.until if rules else None,
        per_code=rules.per_code if rules else None,
        per_customer=rules.per_customer if rules else None,
        total=rules.total if rules else None,
    )


def bare_offer(story: str, text: str, region: str | None, stores: Mapping[str, Store]) -> Offer:
    """An offer known only from its code's row (the manifest lacks the story)."""
    return Offer(
        story,
        text,
        None,
        None,
        None,
        region,
        default_stores(region, None, stores),
        None,
        None,
        None,
        None,
    )


class OfferBook:
    """The manifest's stories with an offer, re-read when the manifest file changes."""

    def __init__(self, manifest: Path, stores: Mapping[str, Store]) -> None:
        self.manifest = manifest
        self.stores = stores
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._offers: dict[str, Offer] = {}
        self._stories: dict[str, Story] = {}

    def _fresh(self) -> None:
        try:
            stat = self.manifest.stat()
        except OSError:
            self._offers, self._stories, self._stamp = {}, {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            stories = load_manifest(self.manifest).stories
        except ManifestError:
            return  # a half-written manifest: keep what was read before
        self._stories = {s.slug: s for s in stories}
        self._offers = {s.slug: offer_of(s, self.stores) for s in stories if s.offer}
        self._stamp = stamp

    def get(self, slug: str) -> Offer | None:
        with self._lock:
            self._fresh()
            return self._offers.get(slug)

    def story(self, slug: str) -> Story | None:
        with self._lock:
            self._fresh()
            return self._stories.get(slug)
