"""The aggregate rating of each store, from its testimonials, as schema.org JSON-LD.

Only testimonials the build publishes count, and of those only the ones whose customer gave
consent that still holds (``Consent: yes``, ``Consent-Until`` not passed): a rating is part of
what the customer agreed to show. Search engines read the result as a ``LocalBusiness`` with an
``AggregateRating``; the theme adds them to the page's one JSON-LD object as what it is ``about``:
every store on the home page, a region's stores on the region's page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from publisher.model import Story

if TYPE_CHECKING:
    from publisher.settings import Store


@dataclass(frozen=True)
class StoreRating:
    store: str
    region: str | None
    count: int
    average: Decimal  # one decimal place, as shown

    def json_ld(self, name: str, site_url: str) -> dict[str, Any]:
        """The store as a schema.org ``LocalBusiness`` with its ``AggregateRating``; the theme
        writes it with Jinja's ``tojson`` as what the page is ``about``."""
        return {
            "@type": "LocalBusiness",
            "name": name,
            "url": f"{site_url.rstrip('/')}/",
            "aggregateRating": {
                "@type": "AggregateRating",
                "ratingValue": float(self.average),
                "reviewCount": self.count,
                "ratingCount": self.count,
                "bestRating": 5,
                "worstRating": 1,
            },
        }


def consented(story: Story, today: date) -> bool:
    t = story.testimonial
    if t is None or not t.consent or t.rating is None:
        return False
    return t.consent_until is None or t.consent_until >= today


def store_ratings(stories: Iterable[Story], today: date) -> list[StoreRating]:
    """One rating per store with at least one consented, rated testimonial, by store id."""
    found: dict[str, list[int]] = {}
    regions: dict[str, str | None] = {}
    for story in stories:
        t = story.testimonial
        store = (t.store if t else None) or story.store
        if t is None or store is None or not consented(story, today):
            continue
        assert t.rating is not None
        found.setdefault(store, []).append(t.rating)
        regions.setdefault(store, story.region)
    return [
        StoreRating(store, regions[store], len(r), _one_place(Decimal(sum(r)) / len(r)))
        for store, r in sorted(found.items())
    ]


def _one_place(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def for_theme(
    stories: Iterable[Story], stores: Mapping[str, Store], site_url: str, today: date
) -> list[dict[str, Any]]:
    """What the theme loops over: each store's region and its JSON-LD text."""
    out = []
    for rating in store_ratings(stories, today):
        conf = stores.get(rating.store)
        name = conf.name if conf and conf.named else rating.store
        region = (conf.region if conf else None) or rating.region
        out.append(
            {"store": rating.store, "region": region, "data": rating.json_ld(name, site_url)}
        )
    return out
