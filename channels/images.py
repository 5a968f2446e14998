"""Images for posts: read from the content folder, downscaled (never rejected) to fit a network."""

from __future__ import annotations

import io
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MIN_SIDE = 64


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    mime: str


def prepare(
    path: Path, max_bytes: int, formats: tuple[str, ...] = ("image/jpeg", "image/png")
) -> Upload:
    """The file as is when it fits; otherwise re-encoded as JPEG, smaller, until it fits."""
    data = path.read_bytes()
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if (max_bytes <= 0 or len(data) <= max_bytes) and mime in formats:
        return Upload(path.name, data, mime)
    return Upload(path.stem + ".jpg", shrink_to_jpeg(data, max_bytes), "image/jpeg")


def shrink_to_jpeg(data: bytes, max_bytes: int) -> bytes:
    """JPEG at falling quality, then smaller sides, until it is at most ``max_bytes``."""
    with Image.open(io.BytesIO(data)) as opened:
        img = _flatten(opened)
    while True:
        for quality in (90, 80, 70, 60, 50, 40):
            out = _encode(img, quality)
            if max_bytes <= 0 or len(out) <= max_bytes:
                return out
        if min(img.size) <= MIN_SIDE:
            return out
        img = img.resize((max(1, img.width * 3 // 4), max(1, img.height * 3 // 4)))


def _flatten(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _encode(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()
