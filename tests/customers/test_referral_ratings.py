"""The theme's aggregate rating per store (schema.org ``AggregateRating`` in JSON-LD) and its
"verified customer" mark in each language, read back from a built copy of the sample site with
two more testimonials: a verified one in German, and one whose consent has ended (it is neither
built nor counted); a testimonial without consent counts for no store either."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.site_helpers import BIN, parse

VERIFIED_DE = """Title: Endlich ein Bad mit Licht
Date: 2026-11-30 10:00
Slug: berlin-verified-bad
Lang: de
Category: testimonials
Region: berlin
Summary: Ein Bad in Kreuzberg.
Customer: Jana <& Co>
Rating: 3
Store: berlin-1
Consent: yes
Consent-Scope: site
Consent-Version: 2026-12-01
Verified: berlin-1 2026-11-30

Das Bad ist hell geworden.
"""

EXPIRED = """Title: Not for the website
Date: 2026-11-29 10:00
Slug: berlin-expired
Lang: en
Category: testimonials
Region: berlin
Summary: Kept private.
Customer: Someone
Rating: 1
Store: berlin-1
Consent: yes
Consent-Until: 2025-01-31

Nothing to show.
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ratings")
    shutil.copytree(ROOT / "content", root / "content")
    shutil.copytree(ROOT / "themes", root / "themes")
    shutil.copy(ROOT / "pelicanconf.py", root / "pelicanconf.py")
    (root / "content/testimonials/berlin-verified-bad.md").write_text(VERIFIED_DE, "utf-8")
    (root / "content/testimonials/berlin-expired.md").write_text(EXPIRED, "utf-8")
    out = root / "out"
    done = subprocess.run(
        [str(BIN / "pelican"), "content", "-s", "pelicanconf.py", "-o", str(out), "--ignore-cache"],
        cwd=root, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def _headers(path: Path) -> dict[str, str]:
    head = path.read_text(encoding="utf-8").split("\n\n", 1)[0]
    return dict(line.split(": ", 1) for line in head.splitlines())


def expected(root: Path) -> dict[str, tuple[Decimal, int]]:
    """Each store's average (one decimal) and count, from the testimonials' own headers."""
    found: dict[str, list[int]] = {}
    for path in sorted((root / "content" / "testimonials").glob("*.md")):
        h = _headers(path)
        until = h.get("Consent-Until")
        if h.get("Consent") != "yes" or (until and date.fromisoformat(until) < date.today()):
            continue
        found.setdefault(h["Store"], []).append(int(h["Rating"]))
    return {
        store: (
            (Decimal(sum(r)) / len(r)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP),
            len(r),
        )
        for store, r in found.items()
    }


def _ratings(page: Path) -> dict[str, tuple[Decimal, int]]:
    """The stores' ratings in the page's one JSON-LD object (valid JSON, or this fails)."""
    (script,) = parse(page).select('script[type="application/ld+json"]')
    data: dict[str, Any] = json.loads(script.get_text())
    assert data["@context"] == "https://schema.org"
    out: dict[str, tuple[Decimal, int]] = {}
    for business in data.get("about", []):
        assert business["@type"] == "LocalBusiness"
        agg = business["aggregateRating"]
        assert agg["@type"] == "AggregateRating"
        assert (agg["bestRating"], agg["worstRating"]) == (5, 1)
        assert agg["reviewCount"] == agg["ratingCount"]
        out[business["name"]] = (Decimal(str(agg["ratingValue"])), agg["reviewCount"])
    return out


NAMES = {
    "berlin-1": "Cedar & Clay Berlin Kreuzberg",
    "shanghai-1": "松陶家居 上海徐汇店",
    "xiamen-1": "松陶家居 厦门思明店",
}


def test_each_store_s_aggregate_rating_counts_only_consented_testimonials(built: Path) -> None:
    want = expected(built)
    assert want["berlin-1"][1] == 3  # the sample's two and the German one, not the expired one
    on_home = _ratings(built / "out" / "index.html")
    names = {s: str(_store_name(built, s)) for s in want}
    assert on_home == {names[s]: v for s, v in want.items()}
    on_region = _ratings(built / "out" / "regions" / "berlin.html")
    assert on_region == {names["berlin-1"]: want["berlin-1"]}
    assert not (built / "out" / "testimonials" / "berlin-expired.html").exists()


def _store_name(root: Path, store: str) -> str:
    conf = (root / "pelicanconf.py").read_text(encoding="utf-8")
    found = re.search(rf'"{store}": \{{\s*"name": "([^"]+)"', conf)
    assert found, store
    return found.group(1)


def test_the_verified_mark_speaks_the_testimonial_s_language(built: Path) -> None:
    page = parse(built / "out" / "testimonials" / "berlin-verified-bad.html")
    mark = page.select_one(".verified")
    assert mark is not None
    name = _store_name(built, "berlin-1")
    assert f"Verifizierte Kundschaft von {name}" in mark.get_text()
    assert "<&" not in str(page.select_one(".review-customer"))  # escaped, as before


def test_a_testimonial_without_consent_counts_for_no_store() -> None:
    from publisher.model import Testimonial
    from publisher.ratings import store_ratings
    from tests.tracking.trackkit import make_story

    def review(slug: str, rating: int, consent: bool) -> Any:
        said = Testimonial("A.", consent, None, rating, "berlin-1")
        return make_story(slug=slug, store="berlin-1", testimonial=said)

    found = store_ratings([review("a", 5, True), review("b", 1, False)], date(2026, 12, 1))
    assert [(r.store, r.count, r.average) for r in found] == [("berlin-1", 1, Decimal("5.0"))]
