"""Poster test kit: a site with stores that have addresses and hours, a logo, and a way to read
a poster back the way a person and a phone would (poppler's text boxes, zbar's QR reader)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

from publisher import settings as settings_mod
from publisher.model import Story
from tests.conftest import need
from tests.tracking.trackkit import Site

MM = 72 / 25.4  # PDF points per millimetre

STORES = """
STORYLOOP["stores"] = {
    "xiamen-1": {
        "name": "松陶家居 厦门思明店",
        "region": "xiamen",
        "address": ["厦门市思明区湖滨南路 88 号", "1 楼 101 室"],
        "hours": "周一至周五 10:00–21:00\\n周末 09:30–22:00",
    },
    "xiamen-2": {
        "name": "松陶家居 厦门集美店",
        "region": "xiamen",
        "address": "集美区杏林湾路 9 号",
    },
    "berlin-1": {
        "name": "Cedar & Clay Berlin Kreuzberg",
        "region": "berlin",
        "address": ["Oranienstraße 25", "10999 Berlin"],
        "hours": ["Mo–Fr 10–19 Uhr", "Sa 10–16 Uhr"],
    },
}
STORYLOOP["business"] = {"name": "Cedar & Clay 松陶家居", "logo": "logo.png"}
"""

LONG_OFFERS = {
    "en": (
        "en",
        "Spring renovation offer: 15% off every made-to-measure kitchen, wardrobe and "
        "built-in bookcase ordered before the end of the year, including a free design visit "
        "at your home and delivery anywhere in the city",
    ),
    "de": (
        "de",
        "Frühjahrsrenovierungsangebot: 15 % Rabatt auf alle maßgefertigten Massivholzküchen, "
        "Einbauschränke und Bücherregale, einschließlich kostenloser Entwurfsberatung bei "
        "Ihnen zu Hause und Lieferung innerhalb Berlins bis Jahresende: "
        "Altbauwohnungsrenovierungsfrühbucherrabattaktionszeitraumverlängerung",
    ),
    "zh": (
        "zh",
        "春季翻新优惠：年底前订购任意定制厨房、衣柜或嵌入式书柜立减百分之十五，另含免费上门"
        "设计咨询，以及全市范围内免费送货与安装，老客户推荐新客户再享额外礼品一份",
    ),
}


def poster_site(site: Site) -> Site:
    """``site`` with stores, hours and a logo in its settings (a real PNG, drawn with Pillow)."""
    from PIL import Image, ImageDraw

    logo = Image.new("RGB", (120, 120), "#8a1c12")
    ImageDraw.Draw(logo).rectangle((30, 30, 90, 90), fill="#f4efe6")
    logo.save(site.root / "logo.png")
    source = site.settings.source
    source.write_text(source.read_text(encoding="utf-8") + STORES, encoding="utf-8")
    return replace(site, settings=settings_mod.load(source))


def write_manifest(site: Site, *stories: Story, extra: dict[str, object] | None = None) -> None:
    entries = [{**s.to_json(), **(extra or {})} for s in stories]
    manifest = {"version": 1, "site_url": site.settings.site_url, "stories": entries}
    path = site.settings.manifest_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def need_poppler() -> None:
    """pdftotext and friends read posters back; pdftocairo makes the SVG ones."""
    for tool in ("pdftotext", "pdftocairo"):
        need(shutil.which(tool) is not None, f"{tool} (poppler-utils) is not installed")


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class PageText:
    width: float
    height: float
    words: list[Word]

    def joined(self) -> str:
        return "".join(w.text for w in self.words)


def page_text(pdf: Path) -> PageText:
    """Every word poppler finds on the first page, with its box in points."""
    need_poppler()
    out = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    xhtml = re.sub(r"<!DOCTYPE[^>]*>", "", out)
    root = ET.fromstring(xhtml)
    page = next(e for e in root.iter() if e.tag.endswith("page"))
    words = [
        Word(
            e.text or "",
            float(e.get("xMin", 0)),
            float(e.get("yMin", 0)),
            float(e.get("xMax", 0)),
            float(e.get("yMax", 0)),
        )
        for e in page
        if e.tag.endswith("word")
    ]
    return PageText(float(page.get("width", 0)), float(page.get("height", 0)), words)


def page_count(pdf: Path) -> int:
    need_poppler()
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))  # type: ignore[union-attr]


def raster_images(pdf: Path) -> int:
    need_poppler()
    listed = subprocess.run(
        ["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return len(listed[2:])  # two header lines


def to_png(pdf: Path, dpi: int = 150) -> Path:
    need(shutil.which("pdftoppm") is not None, "pdftoppm (poppler-utils) is not installed")
    stem = pdf.with_suffix("")
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(pdf), str(stem)], check=True
    )
    return stem.with_suffix(".png")


def read_qr(png: Path) -> list[str]:
    need(shutil.which("zbarimg") is not None, "zbarimg (zbar-tools) is not installed")
    done = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
        capture_output=True,
        text=True,
    )
    return [line for line in done.stdout.splitlines() if line]
