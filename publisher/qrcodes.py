"""QR codes for the site, drawn with zxing-cpp and set into the story's page as a ``data:`` URI.

No file per code: on a small VM's disk, creating a thousand extra files cost a large build more
than drawing the codes did, and a reader's phone makes one request fewer. Codes are kept between
builds in Pelican's cache folder (``storyloop-qr.json``, URL -> SVG), so a warm rebuild draws
only what is new. zxing-cpp's writer (C++, Zint's encoder) with the mask given and the SVG path
written from tokens looked up rather than formatted (:mod:`publisher.qrdraw`) makes a code in
about 0.12 ms (segno, pure Python, took 1.2 ms); a large cold build still hands the work to a
child process (``python -m publisher.qrdraw``: URLs in, one JSON string a line on stdin,
the string, a tab and the SVG a line out) that draws while Pelican is still reading the
content; a plain child process, so nothing depends on forking or re-importing the parent.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import IO

from publisher import qrdraw
from publisher.errors import StoryloopError

log = logging.getLogger(__name__)

CHILD_THRESHOLD = 100  # fewer codes than this to draw: not worth starting a process
SEND_AT = 4096  # bytes of URLs gathered before a write to the child: fewer system calls
CACHE_NAME = "storyloop-qr.json"
BORDER, DARK, LIGHT = qrdraw.BORDER, qrdraw.DARK, qrdraw.LIGHT
# what the cached codes were drawn with: a cache from another style or encoder is not used
STYLE = (
    f"zxing-cpp {version('zxing-cpp')}, error m, mask {qrdraw.MASK}, border {BORDER}, runs, "
    f"{DARK} on {LIGHT}"
)


class DataOverflowError(StoryloopError, ValueError):
    """More data than a QR code at level M holds."""


def matrix(url: str) -> tuple[bytes, int]:
    """The code's modules, one byte each row after row (0 dark, 255 light), and its width."""
    try:
        return qrdraw.matrix(url)
    except ValueError as exc:  # the encoder's only error: more than a code holds
        raise DataOverflowError(f"{url[:60]}...: {exc}") from exc


def svg(url: str) -> str:
    """The code for ``url`` as SVG (:func:`publisher.qrdraw.svg`)."""
    try:
        return qrdraw.svg(url)
    except ValueError as exc:  # the encoder's only error: more than a code holds
        raise DataOverflowError(f"{url[:60]}...: {exc}") from exc


def data_uri(code: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(code.encode()).decode()


class Codes:
    """The QR codes of one build, asked for as the URLs become known and read while the pages
    are written. The pipe to the child is non-blocking and URLs that do not fit wait in a
    buffer, so a child that falls behind never stalls the build. What the child drew stays in
    its output file, read a code at a time as a page shows it: a build holds the place of each
    code (its URL and two numbers), not the codes (1.5 kB each, the plugin's largest item per
    story after the pages' own data)."""

    def __init__(self, cache: Path | None, *, load: bool = True) -> None:
        self.cache = cache
        self.known: dict[str, str] = {}
        if load and cache is not None and cache.is_file():
            try:
                saved = json.loads(cache.read_text(encoding="utf-8"))
                if saved.get("style") == STYLE:
                    self.known = dict(saved["codes"])
            except (OSError, ValueError, KeyError, AttributeError):
                log.warning("%s unreadable: QR codes are drawn afresh", cache)
        self.cached = set(self.known)
        self.wanted: set[str] = set()
        self.pending: list[str] = []
        self.child: subprocess.Popen[bytes] | None = None
        self.drawn: IO[bytes] | None = None  # where the child writes its codes
        self.errors: IO[bytes] | None = None  # and its complaints
        self.places: dict[str, tuple[int, int]] = {}  # URL -> offset and length in drawn
        self.unsent = bytearray()

    def add(self, url: str) -> None:
        """Draw the code for ``url`` unless it is known or already asked for."""
        if url in self.wanted:
            return
        self.wanted.add(url)
        if url in self.known or url in self.places:
            return
        self.pending.append(url)
        if self.drawn is None and len(self.pending) >= CHILD_THRESHOLD:  # one child a build
            # output to unnamed files, which no pipe limit can fill while nobody reads them
            self.drawn = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _collect)
            self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed in _collect)
            self.child = subprocess.Popen(
                [sys.executable, "-m", "publisher.qrdraw"],
                stdin=subprocess.PIPE,
                stdout=self.drawn,
                stderr=self.errors,
            )
            assert self.child.stdin
            os.set_blocking(self.child.stdin.fileno(), False)
            log.debug("QR codes: drawn by child process %d", self.child.pid)
        if self.child is not None:
            self.unsent += b"".join(json.dumps(u).encode() + b"\n" for u in self.pending)
            self.pending.clear()
            if len(self.unsent) >= SEND_AT:
                self._send()

    def _send(self) -> None:
        assert self.child and self.child.stdin
        try:
            del self.unsent[: os.write(self.child.stdin.fileno(), self.unsent)]
        except BlockingIOError:
            pass
        except BrokenPipeError:  # the child died: _collect() reports why
            self.unsent.clear()

    def data_uri(self, url: str) -> str:
        """The code for ``url`` as a ``data:`` URI; waits for the child the first time."""
        if url not in self.known and url not in self.places:
            self.add(url)
            self._collect()
        return data_uri(self._svg(url))

    def _svg(self, url: str) -> str:
        code = self.known.get(url)
        if code is not None:
            return code
        offset, length = self.places[url]
        assert self.drawn is not None
        return os.pread(self.drawn.fileno(), length, offset).decode()

    def _collect(self) -> None:
        self.known.update((url, svg(url)) for url in self.pending)
        self.pending.clear()
        if self.child is None:
            return
        child = self.child
        assert child.stdin and self.drawn and self.errors
        os.set_blocking(child.stdin.fileno(), True)
        while self.unsent:
            self._send()
        self.child = None
        child.stdin.close()
        with self.errors as errors:
            if child.wait():
                errors.seek(0)
                failure = errors.read().decode(errors="replace").strip()
                self.drawn.close()
                raise RuntimeError(f"drawing QR codes failed: {failure}")
        self.drawn.seek(0)
        offset = 0
        for line in self.drawn:  # a JSON string, a tab (never in one) and the SVG
            head, _tab, code = line.partition(b"\t")
            self.places[json.loads(head)] = (offset + len(head) + 1, len(code) - 1)
            offset += len(line)

    def finish(self, urls: Iterable[str]) -> None:
        """Keep the codes of ``urls`` (this build's stories) for the next build, and only
        those, so the cache never holds a story that is gone."""
        self._collect()
        try:
            if self.cache is not None:
                self._keep(sorted(u for u in urls if u in self.known or u in self.places))
        finally:
            if self.drawn is not None:
                self.drawn.close()

    def _keep(self, urls: list[str]) -> None:
        if set(urls) == self.cached:
            return
        assert self.cache is not None
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        # streamed into the file, a code at a time, as json.dump writes {"style", "codes"}
        tmp = self.cache.with_name(f".{self.cache.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(f'{{"style": {json.dumps(STYLE)}, "codes": {{')
            for number, url in enumerate(urls):
                comma = ", " if number else ""
                out.write(f"{comma}{json.dumps(url)}: {json.dumps(self._svg(url))}")
            out.write("}}")
        os.replace(tmp, self.cache)
