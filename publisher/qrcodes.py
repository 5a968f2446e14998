"""QR codes for the site, drawn with segno.

Each file is named after a digest of the URL it encodes, so a file that exists is up to date and a
warm rebuild draws nothing. Drawing costs one to two milliseconds a code in pure Python: a large
cold build hands the work to a child process (``python -m publisher.qrcodes``, jobs as JSON on
stdin) that runs while Pelican writes the pages; a plain child process, so nothing depends on
forking a threaded parent or re-importing its main module.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import segno

from publisher.files import write_atomically

# Any mask gives a valid code that phone cameras read; searching all eight for the "best" one
# costs ~5 ms a code and made a 1,000-story build 50% slower (codes checked with zbarimg).
MASK = 0
CHILD_THRESHOLD = 100  # fewer codes than this to draw: not worth starting a process

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


def draw(jobs: list[Job]) -> None:
    for folder in {os.path.dirname(target) for _, target in jobs}:
        os.makedirs(folder, exist_ok=True)
    for url, target in jobs:
        write_atomically(Path(target), svg(url))


class Drawing:
    """The QR codes one build still lacks: drawn in a child process when there are many."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = [(url, target) for url, target in jobs if not os.path.isfile(target)]
        self.child: subprocess.Popen[bytes] | None = None
        if len(self.jobs) >= CHILD_THRESHOLD:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "publisher.qrcodes"],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert self.child.stdin
            self.child.stdin.write(json.dumps(self.jobs).encode())
            self.child.stdin.close()

    def finish(self) -> None:
        if self.child is None:
            draw(self.jobs)
            return
        assert self.child.stderr
        errors = self.child.stderr.read().decode(errors="replace")
        if self.child.wait():
            raise RuntimeError(f"drawing QR codes failed: {errors.strip()}")


if __name__ == "__main__":
    draw([(url, target) for url, target in json.load(sys.stdin)])
