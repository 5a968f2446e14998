"""The sample site as readers and crawlers get it: built once per session, read page by page."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from bs4 import BeautifulSoup, Tag

from publisher import qrcodes
from tests.site_helpers import (
    ROOT,
    SITE_URL,
    html_pages,
    json_ld,
    local_file,
    manifest,
    meta,
    parse,
    pelican_build,
    references,
    storyloop_build,
)

TODAY = datetime(2026, 11, 22, tzinfo=UTC)
REGIONS = ("xiamen", "shanghai", "berlin")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample site built with plain ``pelican``, as in pelicanconf.py."""
    out = tmp_path_factory.mktemp("pelican-site")
    pelican_build(out)
    return out


@pytest.fixture(scope="session")
def stories(site: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = manifest(site)["stories"]  # type: ignore[assignment]
    return data


@pytest.fixture(scope="session")
def pages(site: Path) -> dict[str, BeautifulSoup]:
    return {p.relative_to(site).as_posix(): parse(p) for p in html_pages(site)}


TRACKER = "http://127.0.0.1:8000"  # pelicanconf.py's tracking base_url
TRACKER_PAGES = (f"{TRACKER}/offer/", f"{TRACKER}/qr/")


def page_for(site: Path, story: dict[str, Any]) -> str:
    path = local_file(site, site / "index.html", story["url"], SITE_URL)
    assert path is not None, story["url"]
    return path.relative_to(site).as_posix()


def each_page(pages: dict[str, BeautifulSoup]) -> Iterator[tuple[str, BeautifulSoup]]:
    assert len(pages) > 20
    yield from pages.items()


# --------------------------------------------------------------------------- builds


def test_sample_site_builds_under_plain_pelican(site: Path) -> None:
    for path in ("index.html", "stories/index.html", "testimonials/index.html", "about.html"):
        assert (site / path).is_file(), path
    for region in REGIONS:
        assert (site / "regions" / f"{region}.html").is_file(), region
    assert (site / "theme/css/storyloop.css").is_file()
    assert (site / "storyloop-manifest.json").is_file()


def test_storyloop_build_writes_the_same_pages_as_pelican(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    storyloop_build(out)
    assert [p.relative_to(out) for p in html_pages(out)] == [
        p.relative_to(site) for p in html_pages(site)
    ]
    assert manifest(out)["stories"] == manifest(site)["stories"]


def test_every_story_lives_at_its_category_and_slug_whatever_its_language(
    stories: list[dict[str, Any]],
) -> None:
    for story in stories:
        assert story["url"] == f"{SITE_URL}/{story['category']}/{story['slug']}.html"


def test_theme_renders_every_page_with_only_its_own_plugin_for_labels(tmp_path: Path) -> None:
    pelican_build(tmp_path, extra={"PLUGINS": ["publisher.pelican_theme"]})
    story = parse(tmp_path / "stories/xiamen-tea-room.html")
    assert story.find("h1").get_text() == "在骑楼的二楼，做一间喝功夫茶的小茶室"  # type: ignore[union-attr]
    assert meta(story, "og:type") == "article"
    assert (tmp_path / "testimonials/index.html").is_file()


# --------------------------------------------------------------------------- feeds


@pytest.mark.parametrize("feed", ["all", "stories", "testimonials"])
def test_every_atom_feed_parses_with_entries(site: Path, feed: str) -> None:
    parsed = feedparser.parse((site / "feeds" / f"{feed}.atom.xml").read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.entries
    for entry in parsed.entries:
        assert entry.link.startswith(f"{SITE_URL}/")
        assert local_file(site, site / "index.html", entry.link, SITE_URL).is_file()  # type: ignore[union-attr]


def test_every_page_links_every_category_feed(pages: dict[str, BeautifulSoup]) -> None:
    wanted = {f"{SITE_URL}/feeds/{f}.atom.xml" for f in ("all", "stories", "testimonials")}
    for path, soup in each_page(pages):
        alternates = soup.find_all("link", attrs={"rel": "alternate"})
        assert wanted <= {str(link["href"]) for link in alternates}, path


# --------------------------------------------------------------------------- meta tags


def test_every_page_has_lang_canonical_open_graph_and_twitter_card(
    pages: dict[str, BeautifulSoup],
) -> None:
    for path, soup in each_page(pages):
        html = soup.find("html")
        assert isinstance(html, Tag) and html.get("lang") in ("zh", "en"), path
        canonical = soup.find("link", attrs={"rel": "canonical"})
        assert isinstance(canonical, Tag), path
        url = str(canonical["href"])
        assert url.startswith(f"{SITE_URL}/"), path
        assert meta(soup, "og:url") == url, path
        for key in ("og:title", "og:description", "twitter:title", "twitter:description"):
            assert meta(soup, key), (path, key)
        assert (meta(soup, "og:image") or "").startswith(f"{SITE_URL}/"), path
        assert meta(soup, "twitter:card") == "summary_large_image", path
        assert meta(soup, "og:type") in ("article", "website"), path


def test_canonical_url_of_each_story_is_the_manifest_url(
    site: Path, stories: list[dict[str, Any]], pages: dict[str, BeautifulSoup]
) -> None:
    for story in stories:
        soup = pages[page_for(site, story)]
        assert meta(soup, "og:url") == story["url"]
        assert meta(soup, "og:type") == "article"
        assert meta(soup, "og:image") == story["images"][0]["url"]
        assert meta(soup, "og:title") == story["title"]
        html = soup.find("html")
        assert isinstance(html, Tag) and html["lang"] == story["lang"]


def test_every_page_has_json_ld_of_the_right_type(
    site: Path, stories: list[dict[str, Any]], pages: dict[str, BeautifulSoup]
) -> None:
    for path, soup in each_page(pages):
        assert len(json_ld(soup)) == 1, path
    for story in stories:
        (data,) = json_ld(pages[page_for(site, story)])
        assert data["@context"] == "https://schema.org"
        assert data["url"] == story["url"]
        if story["category"] == "testimonials":
            assert data["@type"] == "Review"
            assert data["reviewRating"]["ratingValue"] == story["testimonial"]["rating"]  # type: ignore[index]
            assert data["itemReviewed"]["name"]  # type: ignore[index]
            assert data["author"]["name"] == story["testimonial"]["customer"]  # type: ignore[index]
        else:
            assert data["@type"] == "Article"
            assert data["headline"] == story["title"]
    assert json_ld(pages["index.html"])[0]["@type"] == "WebSite"
    assert json_ld(pages["testimonials/index.html"])[0]["@type"] == "CollectionPage"
    assert json_ld(pages["about.html"])[0]["@type"] == "AboutPage"


# --------------------------------------------------------------------------- links, images, a11y


def test_every_internal_link_and_image_resolves_to_a_file(
    site: Path, pages: dict[str, BeautifulSoup]
) -> None:
    broken = []
    for path, soup in each_page(pages):
        ids = {str(t["id"]) for t in soup.find_all(id=True)}
        for tag, url in references(soup):
            if url.startswith("#"):
                if url[1:] not in ids:
                    broken.append((path, tag, url))
                continue
            if url.startswith(TRACKER_PAGES):  # served by the tracker, not files of the site
                continue
            target = local_file(site, site / path, url, SITE_URL)
            if target is not None and not target.is_file():
                broken.append((path, tag, url))
    assert not broken


def test_pages_load_nothing_from_other_hosts_and_ship_no_javascript(
    site: Path, pages: dict[str, BeautifulSoup]
) -> None:
    for path, soup in each_page(pages):
        for script in soup.find_all("script"):
            assert script.get("type") == "application/ld+json" and not script.get("src"), path
        for tag in soup.find_all(["img", "link", "source", "iframe"]):
            url = str(tag.get("src") or tag.get("href") or "")
            if (tag.name == "link" and tag.get("rel") == ["canonical"]) or url.startswith("data:"):
                continue  # data: URIs (the QR codes) load nothing at all
            assert local_file(site, site / path, url, SITE_URL) is not None, (path, url)
    css = (site / "theme/css/storyloop.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(http" not in css and "@font-face" not in css


def test_every_image_has_alt_text_and_dimensions(pages: dict[str, BeautifulSoup]) -> None:
    for path, soup in each_page(pages):
        for img in soup.find_all("img"):
            assert str(img.get("alt", "")).strip(), (path, img.get("src"))
            assert int(str(img["width"])) > 0 and int(str(img["height"])) > 0, (path, img["src"])


def test_only_images_below_the_fold_load_lazily(pages: dict[str, BeautifulSoup]) -> None:
    for path in ("index.html", "stories/index.html", "testimonials/index.html"):
        images = pages[path].find("main").find_all("img")  # type: ignore[union-attr]
        assert images[0].get("loading") is None, path
        assert all(img.get("loading") == "lazy" for img in images[3:]), path


def test_every_page_has_one_h1_and_no_skipped_heading_level(
    pages: dict[str, BeautifulSoup],
) -> None:
    for path, soup in each_page(pages):
        levels = [int(h.name[1]) for h in soup.find_all(re.compile(r"^h[1-6]$"))]
        assert levels.count(1) == 1 and levels[0] == 1, (path, levels)
        for before, after in itertools.pairwise(levels):
            assert after <= before + 1, (path, levels)


def test_every_page_starts_with_a_skip_link_to_main(pages: dict[str, BeautifulSoup]) -> None:
    for path, soup in each_page(pages):
        first = soup.body.find("a")  # type: ignore[union-attr]
        assert isinstance(first, Tag) and first["href"] == "#main", path
        assert soup.find("main", id="main"), path


def test_each_page_s_menu_and_footer_are_in_its_language_and_mark_only_itself(
    pages: dict[str, BeautifulSoup],
) -> None:
    """The menu and the footer are rendered once per language and page key
    (publisher.pelican_theme.Fragments): a key missing the language or the page would show
    another page's."""
    labels = {"zh": "故事", "en": "Stories"}  # pelicanconf.py's CATEGORY_LABELS
    footers: dict[str, set[str]] = {}
    marked = 0
    for path, soup in each_page(pages):
        lang = str(soup.html["lang"])  # type: ignore[index]
        canonical = soup.find("link", attrs={"rel": "canonical"})
        nav, footer = soup.select_one("nav.site-nav"), soup.select_one("footer.site-footer")
        assert isinstance(canonical, Tag) and nav is not None and footer is not None, path
        links = [str(a["href"]) for a in nav.select("a")]
        current = [str(a["href"]) for a in nav.select("a[aria-current]")]
        assert current == [c for c in links if c == canonical["href"]], path
        marked += len(current)
        assert labels[lang] in nav.get_text(), path
        footers.setdefault(lang, set()).add(str(footer))
    assert marked >= 4  # the category and region pages
    assert {lang: len(seen) for lang, seen in footers.items()} == {"zh": 1, "en": 1}
    assert footers["zh"] != footers["en"]


# --------------------------------------------------------------------------- the theme's pages


def test_testimonials_page_shows_each_customer_and_rating_as_stars(
    stories: list[dict[str, Any]], pages: dict[str, BeautifulSoup]
) -> None:
    soup = pages["testimonials/index.html"]
    reviews = {
        r.find(class_="customer").get_text(): r  # type: ignore[union-attr]
        for r in soup.find_all("li", class_="review")
    }
    testimonials = [s for s in stories if s["category"] == "testimonials"]
    assert len(reviews) == len(testimonials) >= 5
    for story in testimonials:
        review = reviews[story["testimonial"]["customer"]]
        rating = story["testimonial"]["rating"]
        assert review["lang"] == story["lang"]
        assert len(review.select(".star-on")) == rating
        assert review.select_one(".stars-glyphs")["aria-hidden"] == "true"  # type: ignore[index]
        spoken = review.select_one(".stars .visually-hidden").get_text()  # type: ignore[union-attr]
        expected = f"{rating} out of 5" if story["lang"] == "en" else f"{rating} 星，满分 5 星"
        assert spoken == expected


def test_stories_with_an_offer_show_it_with_their_qr_code(
    site: Path, stories: list[dict[str, Any]], pages: dict[str, BeautifulSoup]
) -> None:
    offers = 0
    for story in stories:
        soup = pages[page_for(site, story)]
        box = soup.find("aside", class_="offer")
        if not story["offer"]:
            assert box is None, story["slug"]
            continue
        offers += 1
        assert isinstance(box, Tag)
        text = box.get_text(" ", strip=True)
        label = "Show this in the shop" if story["lang"] == "en" else "到店出示此码"
        assert label in text  # the theme's labels are in the story's language
        assert story["offer"] in text
        qr = box.find("img", class_="offer-qr")
        assert isinstance(qr, Tag) and qr.get("alt")
        kind, _, data = str(qr["src"]).partition(",")
        assert kind == "data:image/svg+xml;base64"
        # the QR code is the tracker's tracked /qr/ link of the story (the `site` channel)
        assert base64.b64decode(data).decode() == qrcodes.svg(f"{TRACKER}/qr/{story['slug']}")
        claim = box.find("a", class_="offer-claim")
        assert isinstance(claim, Tag) and claim["href"] == f"{TRACKER}/offer/{story['slug']}"
    assert offers >= 4


def test_each_region_page_lists_exactly_that_regions_articles(
    stories: list[dict[str, Any]], pages: dict[str, BeautifulSoup]
) -> None:
    for region in REGIONS:
        soup = pages[f"regions/{region}.html"]
        linked = {str(a["href"]) for a in soup.select("main .card-title a")}
        assert linked == {s["url"] for s in stories if s["region"] == region}, region


def test_home_page_lists_stories_as_cards_with_image_region_and_date(
    stories: list[dict[str, Any]], pages: dict[str, BeautifulSoup]
) -> None:
    cards = pages["index.html"].select('section[aria-labelledby="latest-stories"] .card')
    assert len(cards) == min(9, sum(1 for s in stories if s["category"] == "stories"))
    for card in cards:
        assert card.find("img") and card.find("time") and card.select_one(".tag")
        assert card.select_one(".card-summary").get_text(strip=True)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- the sample content


def test_sample_content_covers_the_whole_content_model(stories: list[dict[str, Any]]) -> None:
    testimonials = [s for s in stories if s["testimonial"]]
    assert len(stories) >= 14 and len(testimonials) >= 5
    assert {s["lang"] for s in stories} == {"zh", "en"}
    assert {s["region"] for s in stories} == set(REGIONS)
    assert sum(1 for s in stories if len(s["variants"]) >= 2) >= 4
    assert sum(1 for s in stories if s["overrides"]) >= 2
    assert all(s["store"] for s in stories if s["offer"])
    assert all(len(s["channels"]) >= 2 for s in stories)
    times = [datetime.fromisoformat(s["publish_at"].replace("Z", "+00:00")) for s in stories]
    assert min(times) < TODAY < max(times)
    assert {s["timezone"] for s in stories} >= {"Asia/Shanghai", "Europe/Berlin"}
    for story in testimonials:
        t = story["testimonial"]
        assert t["consent"] is True and t["consent_until"] >= "2030-01-01"
        assert 1 <= t["rating"] <= 5
    for story in stories:
        (image,) = story["images"]
        assert image["alt"] and image["bytes"] < 60_000
        assert image["width"] <= 1200 and image["height"] <= 800


def test_sample_subscribers_are_fictitious_and_say_whether_they_consented() -> None:
    lines = (ROOT / "content/subscribers.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "email,name,consent,lang"
    rows = [line.split(",") for line in lines[1:]]
    assert rows and all(r[0].split("@")[1].startswith("example.") for r in rows)
    assert {r[2] for r in rows} == {"yes", "no"} and {r[3] for r in rows} == {"zh", "en"}


# --------------------------------------------------------------------------- colour contrast


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_theme_text_colours_have_at_least_4_5_to_1_contrast() -> None:
    css = (ROOT / "themes/storyloop/static/css/storyloop.css").read_text(encoding="utf-8")
    var = dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-f]{6})", css))
    footer = "#2f2620"
    pairs = [
        (var["ink"], var["paper"]),
        (var["ink-2"], var["paper"]),
        (var["ink-2"], var["card"]),
        (var["clay"], var["paper"]),
        (var["clay"], var["card"]),
        (var["clay-dark"], var["card"]),
        (var["cedar"], var["paper"]),
        (var["cedar"], var["cedar-soft"]),
        ("#ffffff", var["cedar"]),
        ("#ffffff", var["ink"]),
        ("#efe6da", footer),
        ("#ffd9b8", footer),
        ("#cdbfae", footer),
    ]
    for fg, bg in pairs:
        assert contrast(fg, bg) >= 4.5, (fg, bg, round(contrast(fg, bg), 2))


def test_the_site_has_its_own_404_page_that_search_engines_skip(
    pages: dict[str, BeautifulSoup],
) -> None:
    soup = pages["404.html"]
    assert soup.h1 is not None and "页面不存在" in soup.h1.get_text()  # the site's language
    assert meta(soup, "robots") == "noindex"
    assert soup.find("a", href=f"{SITE_URL}/") is not None


def test_one_pelican_process_builds_again_as_its_autoreload_does(tmp_path: Path) -> None:
    """`pelican -r` calls run() again on the same instance: the second build must be whole."""
    from pelican import Pelican
    from pelican.settings import read_settings

    out = tmp_path / "output"
    settings = read_settings(
        str(ROOT / "pelicanconf.py"),
        override={"OUTPUT_PATH": str(out), "CACHE_PATH": str(tmp_path / "cache")},
    )
    site = Pelican(settings)
    site.run()
    first = manifest(out)
    site.run()
    assert manifest(out) == first
    assert len(first["stories"]) >= 12  # type: ignore[arg-type]


def test_a_picture_replaced_between_two_builds_of_one_process_shows_its_new_size(
    tmp_path: Path,
) -> None:
    """Under `pelican -r` a picture an editor replaces is read again: the sizes the plugin reads
    are kept for one build, not for the life of the process."""
    import shutil

    from pelican import Pelican
    from pelican.settings import read_settings
    from PIL import Image

    content, out = tmp_path / "content", tmp_path / "output"
    shutil.copytree(ROOT / "content", content)
    settings = read_settings(
        str(ROOT / "pelicanconf.py"),
        override={"PATH": str(content), "OUTPUT_PATH": str(out), "CACHE_PATH": str(tmp_path / "c")},
    )
    site = Pelican(settings)
    site.run()
    page = out / "stories" / "berlin-altbau-floor.html"
    hero = parse(page).select_one(".story-hero img")
    assert hero is not None and (hero["width"], hero["height"]) != ("300", "200")
    Image.new("RGB", (300, 200), (120, 90, 60)).save(content / "images" / "berlin-altbau-floor.jpg")
    site.run()
    hero = parse(page).select_one(".story-hero img")
    assert hero is not None and (hero["width"], hero["height"]) == ("300", "200")


def test_with_relative_urls_cards_and_images_link_relatively(tmp_path: Path) -> None:
    pelican_build(tmp_path, extra={"RELATIVE_URLS": True})
    home = parse(tmp_path / "index.html")
    cards = home.select("article.card")
    assert cards
    for card in cards:
        for tag in card.select("a[href], img[src]"):
            url = str(tag.get("href") or tag.get("src"))
            assert not url.startswith(("http:", "https:", "/")), url
            assert local_file(tmp_path, tmp_path / "index.html", url, SITE_URL) is not None, url
