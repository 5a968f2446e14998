"""A phone-camera JPEG: EXIF with a GPS position, a camera model, and an orientation tag."""

from __future__ import annotations

import io

from PIL import ExifTags, Image

GPS_LATITUDE = (52.0, 29.0, 5.0)


def gps_jpeg(width: int = 3000, height: int = 2000, orientation: int = 6) -> bytes:
    picture = Image.new("RGB", (width, height), (180, 120, 80))
    for x in range(0, width, 50):  # a pattern, so the photo is not one flat colour
        picture.paste((40, 90, 160), (x, 0, x + 10, height))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Pocket 12"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 37.0)
    out = io.BytesIO()
    picture.save(out, format="JPEG", exif=exif, quality=80)
    return out.getvalue()


def has_gps(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as opened:
        exif = opened.getexif()
        return bool(exif.get_ifd(ExifTags.IFD.GPSInfo)) or ExifTags.Base.GPSInfo in exif


def metadata(data: bytes) -> tuple[dict[int, object], set[str]]:
    """(EXIF tags, names of the other metadata blocks Pillow sees) of a stored JPEG."""
    with Image.open(io.BytesIO(data)) as opened:
        blocks = {k for k in opened.info if k in ("exif", "xmp", "comment", "photoshop")}
        return dict(opened.getexif()), blocks
