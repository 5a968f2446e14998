"""QR codes for the site, drawn with segno.

Each file is named after a digest of the URL it encodes, so a file that exists is up to date and a
warm rebuild draws nothing. Drawing costs one to two milliseconds a code in pure Python, so a large
cold build hands the work to a child process (``python -m publisher.qrcodes``, one JSON job per
line on stdin) that draws while Pelican is still reading the rest of the content and then writing
pages; a plain child process, so nothing depends on forking or re-importing the parent.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import segno

from publisher.files import write_atomically

log = logging.getLogger(__name__)

# Any mask gives a valid code that phone cameras read; searching all eight for the "best" one
# costs ~5 ms a code and made a 1,000-story build 50% slower (codes checked with zbarimg).
MASK = 0
CHILD_THRESHOLD = 100  # fewer codes than this to draw: not worth starting a process

SEND_AT = 4096  # bytes of jobs gathered before a write to the child: fewer system calls
Job = tuple[str, str]  # (url, file to write)


def site_path(slug: str, url: str) -> str:
    """Where the story's QR code lives on the site."""
    return f"qr/{slug}-{hashlib.sha256(url.encode()).hexdigest()[:10]}.svg"


def svg(url: str) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(url, error="m", mask=MASK).save(
        buffer, kind="svg", xmldecl=False, border=2, omitsize=True, dark="#1f1a17", light="#fff"
    )
    return buffer.getvalue()


def draw(jobs: Iterable[Job]) -> None:
    folders: set[str] = set()
    for url, target in jobs:
        folder = os.path.dirname(target)
        if folder not in folders:
            os.makedirs(folder, exist_ok=True)
            folders.add(folder)
        write_atomically(Path(target), svg(url))


class Drawing:
    """The QR codes one build lacks, given as they become known; many go to a child process.

    The pipe to the child is non-blocking and jobs that do not fit wait in a buffer, so a child
    that falls behind never stalls the build.
    """

    def __init__(self) -> None:
        self.pending: list[Job] = []
        self.given: set[str] = set()
        self.child: subprocess.Popen[bytes] | None = None
        self.unsent = bytearray()

    def add(self, url: str, target: str) -> None:
        """Draw ``url`` into ``target`` unless that file exists or was asked for already."""
        if target in self.given or os.path.isfile(target):
            return
        self.given.add(target)
        self.pending.append((url, target))
        if self.child is None and len(self.pending) >= CHILD_THRESHOLD:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "publisher.qrcodes"],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert self.child.stdin
            os.set_blocking(self.child.stdin.fileno(), False)
            log.debug("QR codes: drawn by child process %d", self.child.pid)
        if self.child is not None:
            self.unsent += b"".join(json.dumps(job).encode() + b"\n" for job in self.pending)
            self.pending.clear()
            if len(self.unsent) >= SEND_AT:
                self._send()

    def _send(self) -> None:
        assert self.child and self.child.stdin
        try:
            del self.unsent[: os.write(self.child.stdin.fileno(), self.unsent)]
        except BlockingIOError:
            pass
        except BrokenPipeError:  # the child died: finish() reports why
            self.unsent.clear()

    def finish(self) -> None:
        """Draw what is left and wait for the child; raise if it failed."""
        if self.child is None:
            draw(self.pending)
            self.pending.clear()
            return
        assert self.child.stdin and self.child.stderr
        os.set_blocking(self.child.stdin.fileno(), True)
        while self.unsent:
            self._send()
        self.child.stdin.close()
        errors = self.child.stderr.read().decode(errors="replace")
        if self.child.wait():
            raise RuntimeError(f"drawing QR codes failed: {errors.strip()}")


if __name__ == "__main__":
    if hasattr(os, "nice"):
        os.nice(10)  # the build's own process comes first when they compete for a CPU
    draw((url, target) for url, target in map(json.loads, sys.stdin))
