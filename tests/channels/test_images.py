from __future__ import annotations

from pathlib import Path

from PIL import Image

from channels.images import prepare
from tests.channels.storybook import write_jpeg


def test_an_image_that_fits_is_sent_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "small.jpg"
    write_jpeg(path)
    upload = prepare(path, 1_000_000)
    assert upload.data == path.read_bytes()
    assert (upload.filename, upload.mime) == ("small.jpg", "image/jpeg")


def test_a_large_transparent_png_becomes_a_jpeg_under_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    noise = Image.effect_noise((700, 500), 90).convert("RGBA")
    noise.putalpha(128)
    noise.save(path)
    assert path.stat().st_size > 30_000
    upload = prepare(path, 30_000)
    assert len(upload.data) <= 30_000
    assert (upload.filename, upload.mime) == ("big.jpg", "image/jpeg")
    assert upload.data[:3] == b"\xff\xd8\xff"


def test_a_format_the_network_does_not_take_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "pic.webp"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(path)
    assert prepare(path, 1_000_000).mime == "image/jpeg"
