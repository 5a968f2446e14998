"""Customers' photos made safe to keep: orientation applied, resized, every metadata block gone.

Pillow decodes the upload, ``ImageOps.exif_transpose`` turns it the way the camera held it, and
the pixels alone are written again as a new JPEG: no EXIF (so no GPS position, camera serial or
time), no XMP, no comments.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from publisher.errors import StoryloopError

MAX_SIDE = 1600
MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


class PhotoError(StoryloopError, ValueError):
    """The upload is not a photo we can read; the message says which rule it broke."""


def clean(data: bytes) -> bytes:
    """The photo as a JPEG of at most MAX_SIDE pixels a side, without any metadata."""
    if len(data) > MAX_BYTES:
        raise PhotoError("too large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format not in FORMATS:
                    raise PhotoError("not a photo")
                if opened.width * opened.height > MAX_PIXELS:
                    raise PhotoError("too large")
                turned = ImageOps.exif_transpose(opened)
                picture = turned.convert("RGB")
    except (
        UnidentifiedImageError,
        OSError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise PhotoError("not a photo") from exc
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    clean_copy = Image.new("RGB", picture.size)
    clean_copy.paste(picture)
    out = io.BytesIO()
    clean_copy.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()
