"""Laying a poster out with WeasyPrint: HTML and CSS in, a vector PDF out.

WeasyPrint wraps the text with the fonts' own metrics (Pango and HarfBuzz, so Chinese breaks
between characters and German at its spaces, or inside a word too long for a line). A poster
must keep all of a face's text on that face: the face is laid out on a page of its own size,
and when it spills onto a second page every size on it shrinks a step and it is laid out again.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import segno
from markupsafe import Markup

from publisher.errors import StoryloopError
from publisher.settings import Store
from publisher.tracking.poster import fonts
from publisher.tracking.poster.labels import labels_for, until_text

TEMPLATE = Path(__file__).with_name("poster.html")
# Type sizes tried, as shares of a size's usual ones: a short offer grows to fill the face, a
# long one shrinks until it fits.
SCALES = tuple(round(1.24 - 0.06 * step, 2) for step in range(15))  # 1.24 down to 0.40
QR_FLOOR = 0.75  # the code shrinks less than the type: it must still scan from a step away


class PosterTooFull(StoryloopError):
    """The poster's text does not fit its face even at the smallest type size."""


@dataclass(frozen=True)
class Size:
    """A printed size. ``face`` is what one reader sees; a tent has two faces on one sheet."""

    name: str
    sheet_mm: tuple[float, float]
    face_mm: tuple[float, float]
    faces: int
    type_scale: float
    qr_mm: float
    margin_mm: float

    @property
    def wide(self) -> bool:
        return self.face_mm[0] > self.face_mm[1]


SIZES = {
    "a4": Size("a4", (210, 297), (210, 297), 1, 1.0, 88, 14),
    "a5": Size("a5", (148, 210), (148, 210), 1, 0.72, 62, 10),
    # An A4 sheet folded across the middle: two A5-landscape faces; the upper one is printed
    # upside down so both read upright once the tent stands on a table.
    "tent": Size("tent", (210, 297), (210, 148.5), 2, 0.72, 56, 10),
}


@dataclass(frozen=True)
class Content:
    """Everything printed on one poster, already in the story's language."""

    lang: str
    business: str
    logo: Path | None
    title: str
    offer: str | None
    until: date | None
    url: str
    code: str | None
    store: Store | None

    def texts(self) -> tuple[str | None, ...]:
        store = self.store
        extra = (store.name, *store.address, *store.hours) if store else ()
        return (self.business, self.title, self.offer, self.code, *extra)


@dataclass(frozen=True)
class Layout:
    pdf: bytes
    scale: float  # 1.0, or the step the type was shrunk to so that everything fits


def render(content: Content, size: Size) -> Layout:
    """The poster as PDF bytes, at the largest type size whose text fits each face."""
    values = _values(content, size)

    def fits(scale: float) -> bool:
        return _pages(_html(values, size, scale, single_face=True)) == 1

    scale = _largest(SCALES, fits)
    if scale is not None:
        html = _html(values, size, scale, single_face=False)
        return Layout(_document(html).write_pdf(), scale)
    raise PosterTooFull(
        f"{content.title[:60]!r}: the text does not fit the {size.name} poster even at "
        f"{SCALES[-1]:.0%} of its type size",
        hint="shorten the story's Offer or Title, or print a larger size",
    )


def _largest(scales: tuple[float, ...], fits: Callable[[float], bool]) -> float | None:
    """The first of ``scales`` (largest first) that fits, by bisection: text that fits at one
    size fits at every smaller one, and each try is a full layout."""
    low, high = 0, len(scales)  # scales[high:] are known to fit
    while low < high:
        middle = (low + high) // 2
        if fits(scales[middle]):
            high = middle
        else:
            low = middle + 1
    return scales[high] if high < len(scales) else None


def _values(content: Content, size: Size) -> dict[str, Any]:
    text = fonts.text_font(content.lang)
    families = [text]
    if fonts.needs_cjk(*content.texts()):
        cjk = fonts.cjk_font(content.lang)
        families = [cjk, text] if fonts.language_is_cjk(content.lang) else [text, cjk]
    return {
        "lang": content.lang,
        "families": Markup(", ".join(_css_string(f.family) for f in families) + ", sans-serif"),
        "font_files": [
            {"family": Markup(_css_string(f.family)), "url": Markup(_css_string(f.path.as_uri()))}
            for f in families
            if f.path
        ],
        "business": content.business,
        "logo": _data_uri(content.logo) if content.logo else None,
        "title": content.title,
        "offer": content.offer,
        "until": until_text(content.lang, content.until) if content.until else None,
        "url": content.url,
        "qr": segno.make(content.url, error="q").svg_data_uri(border=4, omitsize=True),
        "code": content.code,
        "store": content.store,
        "labels": labels_for(content.lang),
        "wide": size.wide,
    }


def _css_string(text: str) -> str:
    """``text`` as a quoted CSS string: the style sheet is raw text, never HTML-escaped."""
    return '"' + "".join(c for c in text if c not in '"\\<>\n') + '"'


def _data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _html(values: dict[str, Any], size: Size, scale: float, *, single_face: bool) -> str:
    factor = size.type_scale * scale
    face_w, face_h = size.face_mm
    page_w, page_h = size.face_mm if single_face else size.sheet_mm
    two_faces = size.faces == 2 and not single_face
    sized: Callable[[float], float] = lambda v: round(v * factor, 2)  # noqa: E731
    return _template().render(
        **values,
        pt=sized,
        mm=sized,
        qr_mm=round(size.qr_mm * max(scale, QR_FLOOR), 2),
        faces=2 if two_faces else 1,
        page_w=page_w,
        page_h=page_h,
        page_margin=0 if two_faces else size.margin_mm,
        face_w=face_w,
        face_h=face_h,
        margin=size.margin_mm,
    )


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE.read_text(encoding="utf-8"))


def _document(html: str) -> Any:
    from weasyprint import HTML

    return HTML(string=html, base_url=str(TEMPLATE.parent)).render()


def _pages(html: str) -> int:
    return len(_document(html).pages)
