"""A printable poster for a story: its QR code (a tracked link of the ``offline`` channel, so
posters in a shop are measured like any post), the offer, and the offer code to say at the till.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import Engine

from publisher.files import write_atomically
from publisher.model import Story
from publisher.settings import Settings
from publisher.tracking.links import OFFLINE_CHANNEL, prepare_links

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
A4_PT = (595, 842)
DPI = 150


@dataclass(frozen=True)
class Poster:
    url: str
    offer: str | None
    offer_code: str | None
    svg: Path
    pdf: Path


def offline_delivery_id(story: Story) -> str:
    return f"offline-{story.slug}"[:32]


def make_poster(engine: Engine, settings: Settings, story: Story, out_dir: Path) -> Poster:
    with engine.begin() as conn:
        links = prepare_links(
            conn,
            settings,
            delivery_id=offline_delivery_id(story),
            story=story,
            channel=OFFLINE_CHANNEL,
            variant=None,
        )
    url = links.get(story.url)
    out_dir.mkdir(parents=True, exist_ok=True)
    svg, pdf = out_dir / f"{story.slug}.svg", out_dir / f"{story.slug}.pdf"
    qr = segno.make(url, error="m")
    write_atomically(svg, render_svg(story, qr, url, links.offer_code).encode())
    write_atomically(pdf, render_pdf(story, qr, url, links.offer_code))
    return Poster(url, story.offer, links.offer_code, svg, pdf)


def _lines(story: Story, code: str | None) -> list[tuple[str, int]]:
    lines = [(story.title, 28)]
    if story.offer:
        lines.append((story.offer, 22))
    if code:
        lines.append((f"优惠码 Code: {code}", 30))
    return lines


def render_svg(story: Story, qr: segno.QRCode, url: str, code: str | None) -> str:
    width, height = A4_PT
    modules = int(qr.symbol_size(border=0)[0])
    scale = max(1, 360 // modules)
    side = modules * scale
    x = (width - side) // 2
    texts = []
    y = 90
    for text, size in _lines(story, None):
        texts.append(_svg_text(text, width // 2, y, size))
        y += size + 24
    symbol = qr.svg_inline(scale=scale, border=0, omitsize=False)
    qr_top = y + 10
    after = qr_top + side + 50
    if code:
        texts.append(_svg_text(f"优惠码 Code: {code}", width // 2, after, 30, bold=True))
        after += 40
    texts.append(_svg_text(url, width // 2, after, 12))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}pt" height="{height}pt" '
        f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="#fff"/>'
        f'{"".join(texts)}<g transform="translate({x},{qr_top})">{symbol}</g></svg>\n'
    )


def _svg_text(text: str, x: int, y: int, size: int, *, bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="middle"{weight} '
        f'font-family="Noto Sans CJK SC, sans-serif">{html.escape(text)}</text>'
    )


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size)


def render_pdf(story: Story, qr: segno.QRCode, url: str, code: str | None) -> bytes:
    px = DPI / 72
    width, height = int(A4_PT[0] * px), int(A4_PT[1] * px)
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    y = int(60 * px)
    for text, size in _lines(story, None):
        y = _centred(draw, text, y, int(size * px), width)
    scale = max(1, int(360 * px) // int(qr.symbol_size(border=0)[0]))
    symbol = _qr_image(qr, scale)
    page.paste(symbol, ((width - symbol.width) // 2, y + int(10 * px)))
    y += symbol.height + int(40 * px)
    if code:
        y = _centred(draw, f"优惠码 Code: {code}", y, int(30 * px), width)
    _centred(draw, url, y, int(12 * px), width)
    out = io.BytesIO()
    page.save(out, "PDF", resolution=DPI)
    return out.getvalue()


def _qr_image(qr: segno.QRCode, scale: int) -> Image.Image:
    rows = [bytes(255 if dark else 0 for dark in row) for row in qr.matrix]
    size = len(rows)
    dark = Image.frombytes("L", (size, size), b"".join(rows))
    light = Image.eval(dark, lambda v: 255 - v)
    return light.resize((size * scale, size * scale), Image.Resampling.NEAREST).convert("RGB")


def _centred(draw: ImageDraw.ImageDraw, text: str, y: int, size: int, width: int) -> int:
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - (right - left)) // 2, y), text, fill="black", font=font)
    return int(y + (bottom - top) + size // 2)
