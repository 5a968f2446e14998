"""QR codes drawn for the site: in-process for a few, by a child process for many."""

from __future__ import annotations

import base64
import json
import random
import subprocess
from pathlib import Path

import cairosvg
import pytest

from publisher import qrcodes, qrdraw

URLS = [f"http://127.0.0.1:8000/stories/s{i}.html" for i in range(qrcodes.CHILD_THRESHOLD)]


def svg_of(data_uri: str) -> str:
    return base64.b64decode(data_uri.removeprefix("data:image/svg+xml;base64,")).decode()


@pytest.mark.parametrize("count", [3, len(URLS)], ids=["in-process", "child"])
def test_codes_are_the_same_however_they_are_drawn(count: int) -> None:
    codes = qrcodes.Codes(None)
    for url in URLS[:count]:
        codes.add(url)
    assert (codes.child is not None) == (count >= qrcodes.CHILD_THRESHOLD)
    for url in URLS[:count]:
        assert svg_of(codes.data_uri(url)) == qrcodes.svg(url)
    codes.finish(URLS[:count])


def test_a_child_that_fails_says_why() -> None:
    codes = qrcodes.Codes(None)
    too_long = "http://127.0.0.1:8000/" + "a" * 5000  # beyond what any QR code holds
    for url in [*URLS[:-1], too_long]:
        codes.add(url)
    assert codes.child is not None
    with pytest.raises(RuntimeError, match=r"(?s)drawing QR codes failed:.*Input too long"):
        codes.data_uri(URLS[0])


def test_the_path_from_tokens_is_the_path_run_by_run() -> None:
    """:func:`qrdraw.path` looks strokes up by token; :func:`qrdraw.runs` formats each run. Both
    on codes of several sizes and on module images with all-light rows, first, inside and last
    (the token path hands those to the run-by-run one)."""
    rng = random.Random(17)
    images = [qrcodes.matrix(f"https://t.example/qr/{'s' * n}") for n in (1, 30, 90, 250)]
    for width in (21, 25, 29):
        for light_row in (None, 0, 7, width - 1):
            modules = bytearray(rng.choice(b"\x00\xff") for _ in range(width * width))
            if light_row is not None:
                modules[light_row * width : (light_row + 1) * width] = b"\xff" * width
            images.append((bytes(modules), width))
    for cells, width in images:
        assert qrdraw.path(cells, width) == qrdraw.runs(cells, width)


def test_every_code_reads_back_with_zbarimg(tmp_path: Path, zbarimg_path: str) -> None:
    """The mask is given, not searched for: codes of every size still read back as their URL,
    drawn as the story page shows them (168 px)."""
    urls = [f"http://127.0.0.1:8000/qr/story-{i}" for i in range(30)]
    urls += [f"https://tracker.example.com/qr/{'kitchen-' * n}{n}" for n in range(1, 25)]
    pictures = []
    for i, url in enumerate(urls):
        picture = tmp_path / f"{i}.png"
        cairosvg.svg2png(
            bytestring=qrcodes.svg(url).encode(), write_to=str(picture), output_width=168
        )
        pictures.append(str(picture))
    read = subprocess.run(
        [zbarimg_path, "--quiet", "--raw", *pictures], capture_output=True, text=True
    )
    assert read.stdout.splitlines() == urls, read.stderr


def test_codes_from_the_child_s_file_are_kept_for_the_next_build(tmp_path: Path) -> None:
    """The child's codes are read from its output file as pages ask for them and written to the
    cache a code at a time, as json.dump would write the whole; the next build draws none."""
    cache = tmp_path / qrcodes.CACHE_NAME
    codes = qrcodes.Codes(cache)
    for url in URLS:
        codes.add(url)
    assert codes.child is not None
    assert svg_of(codes.data_uri(URLS[5])) == qrcodes.svg(URLS[5])
    assert not codes.known, "the child's codes stay in its file"
    codes.finish(URLS[:-1])  # the last story is gone: its code is not kept
    whole = {"style": qrcodes.STYLE, "codes": {u: qrcodes.svg(u) for u in sorted(URLS[:-1])}}
    assert cache.read_text(encoding="utf-8") == json.dumps(whole)
    again = qrcodes.Codes(cache)
    for url in URLS[:-1]:
        again.add(url)
    assert again.child is None and not again.pending
    assert svg_of(again.data_uri(URLS[0])) == qrcodes.svg(URLS[0])
