"""Posters for a shop window: vector PDF and SVG, A4, A5 and table tent, one tracked offline link
per store, labels in the story's language, and no text outside the page however long the offer."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publisher import settings as settings_mod
from publisher.model import Story
from publisher.tracking.poster import (
    choose_stores,
    make_poster,
    make_posters,
)
from publisher.tracking.poster.layout import SIZES, PosterTooFull
from publisher.tracking.schema import links, offer_codes
from tests.conftest import need
from tests.tracking.posterkit import (
    LONG_OFFERS,
    MM,
    need_poppler,
    page_count,
    page_text,
    poster_site,
    raster_images,
    read_qr,
    to_png,
    write_manifest,
)
from tests.tracking.trackkit import (
    Site,
    Tracker,
    make_story,
    request,
    run_storyloop,
    storyloop_argv,
    tracker_env,
)

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"


@dataclasses.dataclass(frozen=True)
class StoryWithUntil(Story):
    """The content model once ``Offer-Until`` is part of it (the shop work adds the field)."""

    offer_until: date | None = None


@pytest.fixture
def site(sqlite_site: Site) -> Site:
    return poster_site(sqlite_site)


def offline_links(site: Site) -> list[tuple[str, str | None, str]]:
    with site.engine.connect() as conn:
        query = select(links.c.delivery_id, links.c.variant, links.c.code).where(
            links.c.channel == "offline"
        )
        return sorted(tuple(row) for row in conn.execute(query))  # type: ignore[misc]


def test_poster_has_a_qr_for_an_offline_tracked_link_and_the_offer_code(
    sqlite_site: Site, tmp_path: Path
) -> None:
    need_poppler()
    story = make_story()
    made = make_poster(
        sqlite_site.engine, sqlite_site.settings, story, tmp_path / "posters", fmt="svg"
    )
    assert made.url.startswith(f"http://127.0.0.1:{sqlite_site.port}/go/")
    svg = made.path.read_text(encoding="utf-8")
    assert svg.startswith("<?xml") and made.offer_code and made.offer_code in svg
    assert story.offer and story.offer in svg
    pdf = make_poster(sqlite_site.engine, sqlite_site.settings, story, tmp_path / "posters")
    assert pdf.path.read_bytes().startswith(b"%PDF") and pdf.url == made.url
    with sqlite_site.engine.connect() as conn:
        code = made.url.rsplit("/", 1)[1]
        row = conn.execute(select(links).where(links.c.code == code)).mappings().one()
        offer = conn.execute(select(offer_codes.c.channel)).scalar_one()
    assert row["channel"] == "offline" and offer == "offline"
    assert "utm_medium=offline" in row["target"] and "utm_content=xiamen-1" in row["target"]


def test_printing_the_poster_again_keeps_the_same_link_and_code(
    sqlite_site: Site, tmp_path: Path
) -> None:
    first = make_poster(sqlite_site.engine, sqlite_site.settings, make_story(), tmp_path)
    second = make_poster(
        sqlite_site.engine, sqlite_site.settings, make_story(), tmp_path, size="a5"
    )
    assert (first.url, first.offer_code) == (second.url, second.offer_code)


def test_each_store_gets_its_own_offline_link_stable_across_runs(
    site: Site, tmp_path: Path
) -> None:
    story = make_story(store=None)
    stores = choose_stores(site.settings, story, all_stores=True)
    assert [s.id for s in stores if s] == ["xiamen-1", "xiamen-2"]  # the story's region only
    first = make_posters(site.engine, site.settings, story, tmp_path, stores=stores)
    again = make_posters(site.engine, site.settings, story, tmp_path, stores=stores, size="tent")
    assert [p.url for p in first] == [p.url for p in again]
    assert len({p.url for p in first}) == 2 and len({p.offer_code for p in first}) == 2
    stored = offline_links(site)
    assert [(d, v) for d, v, _ in stored if d.startswith("offline-xiamen-1")] == [
        ("offline-xiamen-1-kitchen", "xiamen-1")
    ] * len([d for d, _, _ in stored if d.startswith("offline-xiamen-1")])
    assert {v for _, v, _ in stored} == {"xiamen-1", "xiamen-2"}
    assert {p.path.name for p in again} == {
        "kitchen-xiamen-1-tent.pdf",
        "kitchen-xiamen-2-tent.pdf",
    }


@pytest.mark.parametrize("size", ["a4", "a5", "tent"])
def test_the_qr_code_reads_as_the_stores_link_and_leads_to_the_story(
    site: Site, tmp_path: Path, size: str, start_tracker: Callable[..., Tracker]
) -> None:
    story = make_story(url=f"http://127.0.0.1:{site.port}/stories/kitchen.html")
    made = make_poster(site.engine, site.settings, story, tmp_path, store="xiamen-2", size=size)
    read = read_qr(to_png(made.path))
    assert read == [made.url] * (2 if size == "tent" else 1)  # a tent shows it on both faces
    start_tracker(site)
    answer = request(
        site.port,
        "GET",
        made.url.removeprefix(f"http://127.0.0.1:{site.port}"),
        {"User-Agent": BROWSER},
    )
    assert answer.status == 302
    location = answer.headers["location"]
    assert location.startswith(story.url + "?")
    assert "utm_source=offline" in location and "utm_content=xiamen-2" in location


CASES = [(size, lang) for size in SIZES for lang in LONG_OFFERS]


@pytest.mark.parametrize(("size", "lang"), CASES)
def test_long_offers_wrap_and_stay_on_the_page(
    site: Site, tmp_path: Path, size: str, lang: str
) -> None:
    story_lang, offer = LONG_OFFERS[lang]
    region, store = ("berlin", "berlin-1") if lang == "de" else ("xiamen", "xiamen-1")
    title = {"zh": "厦门老房子的厨房", "de": "Eine Küche in Kreuzberg"}.get(lang, "A kitchen")
    story = make_story(lang=story_lang, offer=offer, region=region, store=store, title=title)
    made = make_poster(site.engine, site.settings, story, tmp_path, size=size)
    assert page_count(made.path) == 1
    text = page_text(made.path)
    paper = SIZES[size]
    assert (round(text.width / MM), round(text.height / MM)) == paper.sheet_mm
    edge = paper.margin_mm * MM - 1  # the print margin, less a point of rounding
    for word in text.words:
        assert edge <= word.x0 and word.x1 <= text.width - edge, word
        assert edge <= word.y0 and word.y1 <= text.height - edge, word
    faces = 2 if size == "tent" else 1
    assert text.joined().count(offer.replace(" ", "")) == faces  # all of it, nothing cut off
    assert text.joined().count(made.offer_code or "?") == faces
    assert text.joined().count("Oranienstraße25" if lang == "de" else "湖滨南路") == faces
    if size == "tent":
        fold = text.height / 2
        for word in text.words:  # each face's text stays on its own half of the sheet
            assert word.y1 <= fold - edge or word.y0 >= fold + edge, word


def test_a_short_offer_grows_and_a_long_one_shrinks_to_fit(site: Site, tmp_path: Path) -> None:
    short = make_poster(site.engine, site.settings, make_story(offer="-10%"), tmp_path)
    long = make_poster(
        site.engine,
        site.settings,
        make_story(slug="long", offer=LONG_OFFERS["zh"][1] * 2),
        tmp_path,
    )
    assert short.scale > 1 > long.scale


def test_an_offer_too_long_for_any_type_size_is_refused_and_stores_nothing(
    site: Site, tmp_path: Path
) -> None:
    story = make_story(offer=LONG_OFFERS["en"][1] * 30)
    out = tmp_path / "posters"
    with pytest.raises(PosterTooFull, match="does not fit the a5 poster even at 40%"):
        make_poster(site.engine, site.settings, story, out, size="a5")
    assert offline_links(site) == []
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("lang", "region", "store", "labels"),
    [
        ("zh", "xiamen", "xiamen-1", ["扫码阅读故事", "营业时间", "有效期至2026年12月31日"]),
        ("en", "xiamen", "xiamen-1", ["Scan", "Opening", "Validuntil", "December31,2026"]),
        ("de", "berlin", "berlin-1", ["Öffnungszeiten", "Gültigbis31.Dezember2026", "Kasse"]),
    ],
)
def test_labels_and_the_expiry_date_are_in_the_storys_language(
    site: Site, tmp_path: Path, lang: str, region: str, store: str, labels: list[str]
) -> None:
    story = StoryWithUntil(
        **dataclasses.asdict(make_story(lang=lang, region=region, store=store)),
        offer_until=date(2026, 12, 31),
    )
    made = make_poster(site.engine, site.settings, story, tmp_path)
    assert made.until == date(2026, 12, 31)
    text = page_text(made.path).joined()
    for label in labels:
        assert label in text
    assert "Cedar&Clay松陶家居" in text  # the business's name, from the settings


def test_offer_until_is_read_from_the_manifest_when_the_model_lacks_it(
    site: Site, tmp_path: Path
) -> None:
    story = make_story(lang="de", region="berlin", store="berlin-1")
    write_manifest(site, story, extra={"offer_until": "2027-01-15"})
    done = run_storyloop(site, "poster", "kitchen", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Gültigbis15.Januar2027" in page_text(tmp_path / "kitchen-berlin-1-a4.pdf").joined()


def test_the_logo_is_the_only_raster_image_and_the_qr_is_drawn_as_vectors(
    site: Site, tmp_path: Path
) -> None:
    with_logo = make_poster(site.engine, site.settings, make_story(), tmp_path / "logo")
    assert raster_images(with_logo.path) == 1
    source = site.settings.source
    source.write_text(source.read_text().replace('"logo": "logo.png"', '"logo": ""'))
    settings = settings_mod.load(source)
    without = make_poster(site.engine, settings, make_story(), tmp_path / "plain")
    assert raster_images(without.path) == 0


def test_svg_is_valid_xml_with_vector_paths_and_the_posters_text(
    site: Site, tmp_path: Path
) -> None:
    need_poppler()
    made = make_poster(site.engine, site.settings, make_story(), tmp_path, size="a5", fmt="svg")
    root = ET.fromstring(made.path.read_bytes())
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert root.get("width", "").startswith("419.5")  # A5: 148 mm in points
    paths = [e for e in root.iter(f"{ns}path") if e.get("d")]
    assert len(paths) > 100  # every glyph and the QR code are outlines
    title = root.find(f"{ns}title")
    assert title is not None and title.text == make_story().title
    images = [e for e in root.iter(f"{ns}image")]
    assert len(images) == 1  # the logo only


def test_store_address_and_hours_come_from_the_settings(site: Site) -> None:
    stores = site.settings.stores
    assert stores["xiamen-1"].address == ("厦门市思明区湖滨南路 88 号", "1 楼 101 室")
    assert stores["xiamen-1"].hours == ("周一至周五 10:00–21:00", "周末 09:30–22:00")
    assert stores["xiamen-2"].hours == ()


def _cli_error(site: Site, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        storyloop_argv(site, "poster", "kitchen", *args),
        cwd=site.root,
        env={**tracker_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert offline_links(site) == []
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--size", "b3"], "--size 'b3': expected one of a4, a5, tent"),
        (["--format", "png"], "--format 'png': expected one of pdf, svg"),
        (["--store", "paris-1"], 'No store "paris-1"'),
        (["--store", "berlin-1"], "not redeemable at store 'berlin-1'"),
        (["--store", "xiamen-1", "--all-stores"], "give one of them, not both"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    site: Site, args: list[str], expected: str
) -> None:
    write_manifest(site, make_story())
    assert expected in _cli_error(site, *args)


def test_a_story_with_several_stores_asks_which(site: Site) -> None:
    write_manifest(site, make_story(store=None))
    line = _cli_error(site)
    assert "several stores (xiamen-1, xiamen-2)" in line and "--all-stores" in line


def test_chinese_text_without_a_cjk_font_is_one_clear_line(site: Site, tmp_path: Path) -> None:
    fonts = tmp_path / "fonts.conf"
    latin = tmp_path / "latin"
    latin.mkdir()
    dejavu = Path("/usr/share/fonts/truetype/dejavu")
    if dejavu.is_dir():
        (latin / "dejavu").symlink_to(dejavu)
    fonts.write_text(
        f'<?xml version="1.0"?><fontconfig><dir>{latin}</dir>'
        f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    write_manifest(site, make_story())
    env = {"FONTCONFIG_FILE": str(fonts), "STORYLOOP_FONT_DIRS": str(latin)}
    line = _cli_error(site, env=env)
    assert "no font with Chinese glyphs (zh-cn) is installed" in line
    assert "fonts-noto-cjk" in line


def test_without_fontconfigs_cjk_font_the_usual_folders_are_searched(
    site: Site, tmp_path: Path
) -> None:
    noto = next(Path("/usr/share/fonts").rglob("NotoSansCJK*"), None)
    need(noto is not None, "no Noto Sans CJK font under /usr/share/fonts (fonts-noto-cjk)")
    assert noto is not None
    (tmp_path / "cjk").mkdir()
    (tmp_path / "cjk" / noto.name).symlink_to(noto)
    fonts = tmp_path / "fonts.conf"
    fonts.write_text(
        f'<?xml version="1.0"?><fontconfig><dir>{tmp_path / "none"}</dir>'
        f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>"
    )
    write_manifest(site, make_story())
    env = {
        **tracker_env(),
        "FONTCONFIG_FILE": str(fonts),
        "STORYLOOP_FONT_DIRS": str(tmp_path / "cjk"),
    }
    out = tmp_path / "out"
    done = subprocess.run(
        storyloop_argv(site, "poster", "kitchen", "--out", str(out)),
        cwd=site.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pdf = out / "kitchen-xiamen-1-a4.pdf"
    embedded = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
    assert "NotoSansCJK" in embedded.replace("-", "")
    assert "扫码阅读故事" in page_text(pdf).joined()


def test_the_cli_writes_one_poster_per_store(site: Site, tmp_path: Path) -> None:
    need_poppler()
    write_manifest(site, make_story(store=None))
    out = tmp_path / "out"
    done = run_storyloop(
        site,
        "poster",
        "kitchen",
        "--all-stores",
        "--size",
        "tent",
        "--format",
        "svg",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "kitchen-xiamen-1-tent.svg",
        "kitchen-xiamen-2-tent.svg",
    ]
    assert done.stdout.count("QR -> http://127.0.0.1:") == 2
    with site.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(offer_codes)).scalar_one()
    assert count == 2
    assert os.path.getsize(out / "kitchen-xiamen-1-tent.svg") > 10_000


def test_a_site_without_stores_gets_one_poster_on_the_old_offline_delivery(
    sqlite_site: Site, tmp_path: Path
) -> None:
    source = sqlite_site.settings.source
    source.write_text(source.read_text() + '\nSTORYLOOP["stores"] = {}\n')
    settings = settings_mod.load(source)
    made = make_poster(sqlite_site.engine, settings, make_story(), tmp_path, size="a5")
    assert made.store is None and made.path.name == "kitchen-a5.pdf"
    assert {(d, v) for d, v, _ in offline_links(sqlite_site)} == {("offline-kitchen", None)}
    assert "门店地址" not in page_text(made.path).joined()


def test_malformed_store_hours_and_offer_until_are_one_line_each(site: Site) -> None:
    write_manifest(site, make_story(), extra={"offer_until": "end of May"})
    assert "Offer-Until 'end of May' is not a date (expected YYYY-MM-DD)" in _cli_error(site)
    write_manifest(site, make_story())
    source = site.settings.source
    source.write_text(source.read_text() + '\nSTORYLOOP["stores"]["xiamen-1"]["hours"] = 9\n')
    line = _cli_error(site)
    assert "STORYLOOP stores.xiamen-1.hours: expected text or a list of lines" in line


def test_offer_stores_from_the_manifest_decide_where_posters_go(site: Site, tmp_path: Path) -> None:
    write_manifest(site, make_story(), extra={"offer_stores": ["paris-9"]})
    assert "Offer-Stores names no configured store" in _cli_error(site, "--all-stores")
    write_manifest(site, make_story(), extra={"offer_stores": ["xiamen-2"]})
    assert "not redeemable at store 'xiamen-1'" in _cli_error(site, "--store", "xiamen-1")
    done = run_storyloop(site, "poster", "kitchen", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["kitchen-xiamen-2-a4.pdf"]
