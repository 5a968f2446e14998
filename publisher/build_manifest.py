"""Writing ``storyloop-manifest.json`` at the end of a build: streamed, and updated in place.

The manifest is one JSON document with one story a line (``publisher.model`` reads it whole; its
shape is the JSON Schema's). It is written by the build's own process after the pages, one line
at a time into a temporary file beside it that then replaces it, so a reader never sees half of
one and no process holds the whole manifest, or a copy of the build, in memory.

When Pelican caches content, the manifest is also updated in place rather than encoded again:
each line's key (a hash of the story's record as the plugin built it, before the plain text and
content hash were added, with the hash of its source files and what every line depends on: the
settings and the project's code) is kept in Pelican's cache folder (``storyloop-manifest.json``
beside the output's size and mtime, ``storyloop-manifest-keys.json``) with where the line
stands in the file. A story whose key is unchanged has its line copied from the last manifest;
only an edited story is made plain text and encoded again. When every key is the one of the last
build, in the same order, the manifest is not touched at all (its mtime tells watchers nothing
changed); without a cache, the new file is compared with the old one for the same purpose.
"""

from __future__ import annotations

import filecmp
import hashlib
import io
import json
import logging
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from publisher import writer
from publisher.files import write_atomically
from publisher.model import MANIFEST_VERSION, Story

log = logging.getLogger(__name__)
KEYS_NAME = "storyloop-manifest-keys.json"


def record_key(story: Story, shared: str) -> str:
    """The key of a story's line: its record before the plain text is added (pickled without a
    memo, so equal values give equal bytes however the build shared its strings; it holds the
    content hash of its sources) and the shared inputs."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True  # no memo: the bytes depend on the values only
    pickler.dump(story)
    digest = hashlib.sha256(shared.encode())
    digest.update(buffer.getbuffer())
    return digest.hexdigest()


def head(site_url: str) -> bytes:
    text = f'{{"site_url": {json.dumps(site_url)}, "version": {MANIFEST_VERSION}, "stories": ['
    return text.encode()


class Lines:
    """The last manifest's lines by key, read from the file when a line is copied."""

    def __init__(self, manifest: Path, keys: Path | None) -> None:
        self.by_key: dict[str, tuple[int, int]] = {}
        self.order: list[str] = []
        self.head = b""
        self.fd: int | None = None
        if keys is None:
            return
        try:
            saved = json.loads(keys.read_text(encoding="utf-8"))
            stat = manifest.stat()
            if saved.get("manifest") != [stat.st_size, stat.st_mtime_ns]:
                return  # written or replaced by something else since: encode every line
            self.head = str(saved["head"]).encode()
            self.order = [str(k) for k, _at, _size in saved["lines"]]
            self.by_key = {str(k): (int(at), int(size)) for k, at, size in saved["lines"]}
            self.fd = os.open(manifest, os.O_RDONLY)
        except (OSError, ValueError, TypeError, KeyError):
            self.by_key, self.order, self.head = {}, [], b""

    def read(self, key: str) -> bytes | None:
        where = self.by_key.get(key)
        if where is None or self.fd is None:
            return None
        at, size = where
        line = os.pread(self.fd, size, at)
        return line if len(line) == size else None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def write(
    output: Path,
    name: str,
    site_url: str,
    stories: Sequence[tuple[Story, str]],
    encode: Callable[[Story], bytes],
    cache: Path | None,
) -> str:
    """Write the manifest of ``stories`` (each with its :func:`record_key`, in manifest order)
    to ``output / name``; returns what was done, for the build's debug log."""
    path = output / name
    keys_path = cache / KEYS_NAME if cache is not None else None
    old = Lines(path, keys_path)
    top = head(site_url)
    try:
        wanted = [key for _story, key in stories]
        if old.fd is not None and old.head == top and old.order == wanted:
            return f"{len(stories)} unchanged, not written"
        output.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}.next")
        lines: list[list[Any]] = []
        copied = 0
        with open(tmp, "wb") as out:
            out.write(top + b"\n")
            at = len(top) + 1
            for i, (story, key) in enumerate(stories):
                line = old.read(key)
                if line is None:
                    line = encode(story)
                else:
                    copied += 1
                lines.append([key, at, len(line)])
                out.write(line)
                end = b",\n" if i + 1 < len(stories) else b"\n"
                out.write(end)
                at += len(line) + len(end)
            out.write(b"]}\n")
    finally:
        old.close()
    if path.is_file() and filecmp.cmp(tmp, path, shallow=False):
        tmp.unlink()
        done = f"{len(stories)} the same, not replaced"
    else:
        os.replace(tmp, path)
        done = f"{len(stories) - copied} encoded, {copied} copied"
    if keys_path is not None:
        stat = path.stat()
        keys = {"manifest": [stat.st_size, stat.st_mtime_ns], "head": top.decode(), "lines": lines}
        keys_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(keys_path, json.dumps(keys, separators=(",", ":")))
    return done


def shared_key(settings: dict[str, Any]) -> str:
    """What every line depends on besides its story: the settings (how Markdown is read, the
    site's address, the engine's channels), the project's code that built it, and Python."""
    return writer.digest(sys.version, writer.plain_settings(settings), writer.project_code())
