"""Drawing one QR code as SVG, with nothing of the project imported: the child process that
draws a large build's codes (``python -m publisher.qrdraw``: one JSON string a line in, the
same string, a tab and the SVG a line out) starts in a few hundredths of a second instead of
the fifth of a second that importing the engine's error types (and with them ``requests``)
took.
:mod:`publisher.qrcodes` is the module the rest of the project uses.
"""

from __future__ import annotations

import json
import os
import re
import sys

import zxingcpp

BORDER = 2  # modules of light around the code (the page around it is light too)
DARK, LIGHT = "#1f1a17", "#fff"
# Any mask gives a valid code that phone cameras and zbarimg read (every one of the eight was
# checked); zxing-cpp's search for the "best" of eight took four fifths of its time a code
# (0.19 ms against 0.035 ms with the mask given). Mask 0, as the codes had under segno.
MASK = 0
QR_CODE = zxingcpp.BarcodeFormat.QRCode
DARK_RUN = re.compile(rb"\x00+")  # in zxing-cpp's image of the code: 0 dark, 255 light
# in the rows joined by \x01: the light before a run of dark, the end of a row and the light
# that starts the next one when the run is the first of its row, and the run
TOKEN = re.compile(rb"(\xff*)(\x01?)(\xff*)(\x00+)")
WHOLE_TOKEN = re.compile(rb"\xff*\x01?\xff*\x00+")  # the same, as one string


def matrix(url: str) -> tuple[bytes, int]:
    """The code's modules, one byte each row after row (0 dark, 255 light), and its width.

    Level M (15 % of the code may be lost) and no more: the code is shown on a screen or a
    clean page, not on a dirty sign, and a higher level makes a larger code. zxing-cpp's
    ValueError ("Input too long for ECC level M ...") goes to the caller: this module defines no
    error of its own, so that the project's errors keep one root (:mod:`publisher.qrcodes`
    turns it into :class:`~publisher.qrcodes.DataOverflowError`)."""
    code = zxingcpp.create_barcode(url, QR_CODE, ec_level="M", dataMask=MASK)
    image = code.to_image(add_quiet_zones=False)
    # the image has the buffer protocol, which its type stubs do not declare
    return memoryview(image).tobytes(), image.shape[1]  # type: ignore[arg-type]


class _Strokes(dict[bytes, str]):
    """The path text of each token :data:`TOKEN` finds in a code of one width, made the first
    time a token is seen: the few hundred kinds there are are then looked up, not formatted.
    Keyed by the token's bytes: one object a token from ``findall``, not a tuple of four."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def __missing__(self, token: bytes) -> str:
        light, row_end, lead, dark = _parts(token)
        if row_end:  # from the end of the last run of the row above to the first of this one
            text = f"m{len(light) + len(lead) - self.width} 1h{len(dark)}"
        else:
            text = f"m{len(light)} 0h{len(dark)}"
        self[token] = text
        return text


def _parts(token: bytes) -> tuple[bytes, ...]:
    found = TOKEN.fullmatch(token)
    assert found is not None  # a token is what TOKEN found
    return found.groups()


_STROKES: dict[int, _Strokes] = {}


def path(cells: bytes, width: int) -> str:
    """The strokes of :func:`svg`'s dark path for a code's modules, the pen starting at 0, 0.5:
    one relative move and one horizontal line a run of dark modules."""
    rows = b"\x01".join([cells[at : at + width] for at in range(0, len(cells), width)])
    if b"\xff" * width in rows:
        return runs(cells, width)  # a row without any dark module: the tokens assume none
    tokens = WHOLE_TOKEN.findall(rows)
    strokes = _STROKES.get(width) or _STROKES.setdefault(width, _Strokes(width))
    light, _end, _lead, dark = _parts(tokens[0])
    head = f"m{len(light) + BORDER} {BORDER}h{len(dark)}"
    return head + "".join(map(strokes.__getitem__, tokens[1:]))


def runs(cells: bytes, width: int) -> str:
    """What :func:`path` gives, one run at a time (for codes with an all-light row)."""
    strokes = []
    x = y = 0  # where the pen is: relative moves keep the path short
    for row_y, at in enumerate(range(0, len(cells), width), BORDER):
        for run in DARK_RUN.finditer(cells, at, at + width):
            start, end = run.start() - at + BORDER, run.end() - at + BORDER
            strokes.append(f"m{start - x} {row_y - y}h{end - start}")
            x, y = end, row_y
    return "".join(strokes)


def svg(url: str) -> str:
    """The code for ``url`` as SVG: one path of one-module-high strokes, a run of dark modules
    each (a general SVG writer draws a rectangle a run, with absolute coordinates: twice the
    bytes). Phone cameras and zbarimg read it; the browser test reads a story page's code back
    with zbarimg."""
    cells, width = matrix(url)
    size = width + 2 * BORDER
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}">'
        f'<path fill="{LIGHT}" d="M0 0h{size}v{size}h-{size}z"/>'
        f'<path stroke="{DARK}" d="M0 .5{path(cells, width)}"/></svg>'
    )


def main() -> None:
    if hasattr(os, "nice"):
        os.nice(10)  # the build's own process comes first when they compete for a CPU
    for line in sys.stdin:
        url = json.loads(line)
        sys.stdout.write(f"{json.dumps(url)}\t{svg(url)}\n")


if __name__ == "__main__":
    main()
