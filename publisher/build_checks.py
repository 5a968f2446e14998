"""Each story's header as the build parsed and checked it, kept between builds.

A warm rebuild checked every unchanged story again: reading its header a second time after
Pelican, parsing it and resolving its image, about a third of a warm build's CPU. Where Pelican
caches content, the build keeps each file's :class:`Checked` in the cache folder
(``storyloop-parsed.pickle``), keyed by everything the one-file checks read:

- the file's bytes (their SHA-256) and the path shown in messages;
- the metadata Pelican read from it (the checks see Pelican's values, with the file's lines);
- the image it names: whether it is inside the content folder and is a file;
- the rules from the settings (channels, regions, stores, time zone, today's date, fields...);
- the project's code that this build ran (name, size and mtime of each module).

A key that differs in any of these is a miss: the file is read and checked again. What depends
on other files (a duplicate slug, a withdrawn consent) is checked in every build from the kept
slim headers, never taken from the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pickle
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from publisher.content import Header, Parsed, Rules, inside

log = logging.getLogger(__name__)
CACHE_NAME = "storyloop-parsed.pickle"
VERSION = 1


@dataclass(frozen=True)
class Checked:
    """One file's checks: the parse, the header's fields the checks across files read, and
    the channels the header names (None when it names none)."""

    key: str
    parsed: Parsed
    slim: Header
    named: tuple[str, ...] | None


def _plain(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def rules_key(rules: Rules) -> list[Any]:
    return [[f.name, _plain(getattr(rules, f.name))] for f in dataclasses.fields(rules)]


class Cache:
    """The last build's :class:`Checked` by source path, and this build's."""

    def __init__(self, path: Path | None, load: bool, inputs: Any) -> None:
        self.path = path
        self.inputs = json.dumps([VERSION, inputs], sort_keys=True, ensure_ascii=False)
        self.old: dict[str, Checked] = {}
        if path is not None and load:
            try:
                with path.open("rb") as fh:
                    found = pickle.load(fh)
            except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
                found = None
            except (TypeError, ValueError, IndexError):
                found = None
            if isinstance(found, dict):
                self.old = found
        self.new: dict[str, Checked] = {}
        self.images: dict[str, list[bool]] = {}  # one build's answers: the files stay put
        self.hits = 0

    def image_state(self, rules: Rules, image: str | None) -> list[bool] | None:
        """What the image check reads of the file system for ``image``."""
        if not image:
            return None
        state = self.images.get(image)
        if state is None:
            state = [inside(rules.content_dir, image), (rules.content_dir / image).is_file()]
            self.images[image] = state
        return state

    def key(self, display: str, digest: str, values: dict[str, str], image: Any) -> str:
        """The key of one file's checks: ``digest`` is the SHA-256 of its bytes."""
        text = json.dumps([display, digest, values, image], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(f"{self.inputs}\n{text}".encode()).hexdigest()

    def get(self, source: str, key: str) -> Checked | None:
        found = self.old.get(source)
        if isinstance(found, Checked) and found.key == key:
            self.hits += 1
            return found
        return None

    def put(self, source: str, checked: Checked) -> None:
        self.new[source] = checked

    def save(self) -> None:
        """Keep this build's checks for the next one (not written when no key changed)."""
        if self.path is None:
            return
        log.debug("checks: %d of %d from the cache", self.hits, len(self.new))
        same = self.new.keys() == self.old.keys() and all(
            self.old[s].key == c.key for s, c in self.new.items()
        )
        if same:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{CACHE_NAME}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(self.new, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.path)
