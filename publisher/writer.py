"""Pelican's writer, made to leave alone what a build would not change.

Two things, both invisible in the output (a warm rebuild gives the bytes a cold build gives):

- **No file is written again with the bytes it holds.** Every page and feed is rendered into
  memory and compared with the file already there; an unchanged file keeps its inode and mtime,
  so a sync to the web server, a browser's cache or a watcher sees only what changed.
- **A story page whose inputs are unchanged is not even rendered**, when Pelican caches content.
  Its key is a hash of what ``article.html`` can show: the article itself (body, metadata, what
  the plugin computed for it, its translations' addresses) and what every page shares (the
  settings, the theme's templates and catalogues, the project's code the build ran, the
  categories, pages and regions in the menu, the newest stories the "more stories" list
  shows). The keys of the last build are kept in Pelican's cache folder
  (``storyloop-pages.json``) with each file's size and mtime: a page whose file is gone or was
  touched since is rendered again.
- **A listing (index, category, region pages, all the pages of a paginated one) whose inputs
  are unchanged is not rendered either**: its key holds what it is given besides the stories,
  what every page shares, the newest ratings, and for every story it or the context lists what
  a listing shows of it (:func:`card_inputs`: the summary, not the body, when the metadata
  gives one), in the order listed. A body edit of a story with a Summary renders its own page
  and feeds only.

A theme that shows something else on a story page (another story's fields, a value gathered
across all stories) must add it to :func:`shared_inputs`, and one whose listings show a story's
body to :func:`card_inputs`, or its pages would keep the old value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from jinja2 import FileSystemBytecodeCache
from pelican.utils import order_content
from pelican.writers import FileOverwriteFailedError, Writer

log = logging.getLogger(__name__)
KEYS_NAME = "storyloop-pages.json"
ADDRESS = re.compile(r" at 0x[0-9a-f]+")
MORE_STORIES = 4  # article.html's "more stories": the newest few (articles[:4])
# settings that say how Pelican caches, not what a page shows: a cold build (no cache loaded)
# and the warm one after it share their keys
CACHING = frozenset(
    {"LOAD_CONTENT_CACHE", "CACHE_CONTENT", "CACHE_PATH", "CONTENT_CACHING_LAYER"}
    | {"GZIP_CACHE", "CHECK_MODIFIED_METHOD"}
)


def cache_templates(settings: dict[str, Any]) -> None:
    """Where Pelican caches content, Jinja keeps the theme's compiled templates there too
    (compiling them took a warm rebuild of 1,000 stories a quarter of its time). Jinja checks
    each template's source against what it compiled, so an edited template is compiled again."""
    cache = settings.get("CACHE_PATH")
    environment = settings.get("JINJA_ENVIRONMENT")
    if not (settings.get("CACHE_CONTENT") and cache and isinstance(environment, dict)):
        return
    if "bytecode_cache" not in environment:
        folder = Path(cache) / "jinja"
        folder.mkdir(parents=True, exist_ok=True)
        environment["bytecode_cache"] = FileSystemBytecodeCache(str(folder))


def in_stable_order(articles: list[Any], order_by: Any) -> list[Any]:
    """Articles in Pelican's order, ties (the same date) by source path. Pelican reads the files
    in the order of a set, which differs from process to process: without this, stories of the
    same date swapped places between two builds of the same content, and so every page that
    lists the newest stories changed with them."""
    return list(order_content(sorted(articles, key=lambda a: a.source_path), order_by=order_by))


class Unchanged(io.StringIO):
    """What Pelican writes to a file, held in memory; on close, written only if it differs."""

    def __init__(self, path: str, encoding: str) -> None:
        super().__init__()
        self.path, self.charset = path, encoding

    def close(self) -> None:
        if not self.closed:
            data = self.getvalue().encode(self.charset)
            if not same_bytes(self.path, data):
                with open(self.path, "wb") as fh:
                    fh.write(data)
        super().close()


def same_bytes(path: str, data: bytes) -> bool:
    try:
        if os.stat(path).st_size != len(data):
            return False
        with open(path, "rb") as fh:
            return fh.read() == data
    except OSError:
        return False


_FIELDS: dict[type, tuple[str, ...]] = {}  # a record type's field names, looked up once


def _plain(value: Any) -> Any:
    """How an object the plugin or Pelican put in an article is hashed: what it shows."""
    kind = type(value)
    names = _FIELDS.get(kind)
    if names is None and dataclasses.is_dataclass(kind):  # the plugin's records
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind))
    if names is not None:
        return [kind.__name__, *(getattr(value, n) for n in names)]
    url = getattr(value, "url", None)  # a QR code (its URL says it all), a category, a tag
    if isinstance(url, str):
        return [type(value).__name__, str(getattr(value, "name", "")), url]
    if callable(value):  # a function or class in the settings: by name (its code is hashed)
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
    return ADDRESS.sub("", repr(value))  # an object's address differs from build to build


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=_plain, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _files(folders: Iterable[Path], suffixes: tuple[str, ...]) -> list[list[Any]]:
    """Name, size and mtime of every file with one of ``suffixes`` under ``folders``."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.suffix in suffixes and path.is_file():
                stat = path.stat()
                found.append([str(path), stat.st_size, stat.st_mtime_ns])
    return found


def _story(a: Any) -> list[Any]:
    sl = getattr(a, "storyloop", None)
    return [
        a.url,
        a.title,
        a.lang,
        a.date.isoformat(),
        a.locale_date,
        getattr(sl, "path", None),
        sl,
    ]


def project_code() -> list[list[Any]]:
    """Name, size and mtime of the project's code that this build ran (the plugin and what it
    imports, not the engine)."""
    code = sorted(
        str(m.__file__)
        for name, m in list(sys.modules.items())
        if name.partition(".")[0] in ("publisher", "channels") and getattr(m, "__file__", None)
    )
    return [[path, os.stat(path).st_size, os.stat(path).st_mtime_ns] for path in code]


def plain_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that say what the site shows (not how Pelican caches it)."""
    plain = {k: v for k, v in settings.items() if k.isupper() and k not in CACHING}
    environment = plain.get("JINJA_ENVIRONMENT")
    if isinstance(environment, dict):  # the bytecode cache is where, not how, Jinja compiles
        plain["JINJA_ENVIRONMENT"] = {k: v for k, v in environment.items() if k != "bytecode_cache"}
    return plain


def shared_inputs(context: dict[str, Any], settings: dict[str, Any]) -> str:
    """The key of what every story page shows besides its own story."""
    theme = Path(settings["THEME"])
    return digest(
        plain_settings(settings),
        _files([theme / "templates", theme / "translations"], (".html", ".mo", ".po", ".j2")),
        project_code(),
        [[c.name, c.slug, c.url] for c, _items in context.get("categories", [])],
        [[p.slug, p.url, p.title] for p in context.get("pages", [])],
        context.get("storyloop_regions", []),
        [_story(a) for a in context.get("articles", [])[:MORE_STORIES]],
    )


def facts(article: Any) -> str:
    """The key of what a story page and a listing both show of one story: its metadata, what
    the plugin computed for it, its template and its translations' addresses (each follows from
    their metadata and the settings, so is not computed: Pelican's ``url`` costs more than the
    rest of the key together)."""
    return digest(
        article.metadata,
        getattr(article, "storyloop", None),
        getattr(article, "template", ""),
        [[t.slug, t.lang, t.metadata] for t in getattr(article, "translations", [])],
    )


def page_inputs(article: Any, shared: str, name: str, known: str) -> str:
    """The key of one story page: its body and its :func:`facts` (``known``) with what every
    page shares."""
    return digest(shared, name, article.content, known)


LISTS = ("articles", "dates", "all_articles", "paginated")  # what a listing page is given


def _stamp(path: str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def card_inputs(article: Any, known: str) -> str:
    """The key of what a listing page shows of one story: its summary, not its body (Pelican
    makes the summary from the body only when the metadata gives none), and its :func:`facts`
    (``known``). The settings are in the listing's key."""
    summary = article.metadata.get("summary")
    return digest(summary if isinstance(summary, str) and summary else article.content, known)


class PageWriter(Writer):  # type: ignore[misc]
    """Pelican's writer, returned by the ``get_writer`` signal (see the module's docstring)."""

    def __init__(self, output_path: str, settings: dict[str, Any] | None = None) -> None:
        super().__init__(output_path, settings=settings)
        settings = self.settings
        cache = settings.get("CACHE_PATH")
        self.keys_path = (
            Path(cache) / KEYS_NAME if cache and settings.get("CACHE_CONTENT") else None
        )
        self.old: dict[str, list[Any]] = {}
        if self.keys_path is not None and settings.get("LOAD_CONTENT_CACHE"):
            try:
                self.old = dict(json.loads(self.keys_path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                self.old = {}
        self.new: dict[str, list[Any]] = {}
        self.shared: str | None = None
        self.skipped = 0
        self.listings_skipped = 0
        self.article_keys: dict[int, str] = {}  # id of an article -> its card's key
        self.facts: dict[int, str] = {}  # id of an article -> facts(), made once a build
        global ACTIVE
        ACTIVE = self

    def _open_w(self, filename: str, encoding: str, override: bool = False) -> IO[str]:
        """Pelican's bookkeeping of what this build wrote (a second write of one file is an
        error, unless it says it overrides), then a file that is written only if it changes.
        Pelican's own version opens the file at once, which would truncate it."""
        if filename in self._overridden_files:
            if override:
                raise FileOverwriteFailedError(f'Failed to overwrite "{filename}" a second time')
            log.info('Skipping "%s", not overwriting', filename)
            return open(os.devnull, "w", encoding=encoding)
        if filename in self._written_files and not override:
            raise FileOverwriteFailedError(f'Failed to overwrite "{filename}": written already')
        if override:
            self._overridden_files.add(filename)
        self._written_files.add(filename)
        return Unchanged(filename, encoding)

    def write_file(
        self, name: Any, template: Any, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> None:
        article = kwargs.get("article")
        if self.keys_path is None or args or not name:
            super().write_file(name, template, context, *args, **kwargs)
            return
        if self.shared is None:
            self.shared = shared_inputs(context, self.settings)
        if article is None or kwargs.get("paginated"):
            if any(k in kwargs for k in LISTS):
                self.write_listing(name, template, context, **kwargs)
            else:
                super().write_file(name, template, context, *args, **kwargs)
            return
        key = page_inputs(article, self.shared, name, self.article_facts(article))
        path = os.path.join(self.output_path, name)
        old = self.old.get(name)
        try:
            stat = os.stat(path)
            here = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            here = None
        if old is not None and here is not None and old == [key, *here]:
            self._written_files.add(path)  # as Pelican's own overwrite checks expect
            self.new[name] = old
            self.skipped += 1
            return
        super().write_file(name, template, context, *args, **kwargs)
        stat = os.stat(path)
        self.new[name] = [key, stat.st_size, stat.st_mtime_ns]

    def article_facts(self, article: Any) -> str:
        """:func:`facts` of ``article``, shared by its page's key and its card's."""
        known = self.facts.get(id(article))
        if known is None:
            known = self.facts[id(article)] = facts(article)
        return known

    def article_key(self, article: Any) -> str:
        """The key of what a listing shows of ``article`` (:func:`card_inputs`)."""
        key = self.article_keys.get(id(article))
        if key is None:
            key = card_inputs(article, self.article_facts(article))
            self.article_keys[id(article)] = key
        return key

    def listing_inputs(self, name: str, template: Any, context: dict[str, Any], kw: Any) -> str:
        """The key of a page that lists stories (index, category, region; each of its pages
        when paginated): the keys of the stories' own pages in the order listed, for every
        list it is given and the context's, and everything else it is given."""
        lists: dict[str, list[str]] = {}
        given: dict[str, Any] = {}
        for k, v in kw.items():
            if k == "paginated" and isinstance(v, dict):
                lists |= {f"paginated.{n}": [self.article_key(a) for a in v[n]] for n in v}
            elif k in LISTS and isinstance(v, list | tuple):
                lists[k] = [self.article_key(a) for a in v]
            else:
                given[k] = v
        return digest(
            self.shared,
            "listing",
            name,
            getattr(template, "name", ""),
            given,
            lists,
            [self.article_key(a) for a in context.get("articles", [])],
            [
                [c.name, c.slug, [self.article_key(a) for a in items]]
                for c, items in context.get("categories", [])
            ],
            context.get("storyloop_ratings"),
        )

    def write_listing(self, name: str, template: Any, context: dict[str, Any], **kw: Any) -> None:
        """A listing page, or all the pages of a paginated one, rendered only when its key or
        any of its files changed since the last build."""
        key = self.listing_inputs(name, template, context, kw)
        entry = f"listing:{name}"
        old = self.old.get(entry)
        if old is not None and old[0] == key and all(_stamp(f[0]) == f[1:] for f in old[1]):
            self._written_files.update(f[0] for f in old[1])  # as Pelican's checks expect
            self.new[entry] = old
            self.listings_skipped += 1
            return
        before = set(self._written_files)
        super().write_file(name, template, context, **kw)
        files = sorted(self._written_files - before)
        self.new[entry] = [key, [[f, *(_stamp(f) or [])] for f in files]]

    def finish(self) -> None:
        """Keep this build's page keys for the next one."""
        if self.keys_path is None:
            return
        log.debug("pages: %d story pages unchanged, not rendered", self.skipped)
        log.debug("pages: %d listings unchanged, not rendered", self.listings_skipped)
        if self.new != self.old:
            self.keys_path.parent.mkdir(parents=True, exist_ok=True)
            data = json.dumps(self.new, separators=(",", ":"), sort_keys=True)
            tmp = self.keys_path.with_name(f".{KEYS_NAME}.{os.getpid()}.tmp")
            tmp.write_text(data, encoding="utf-8")
            os.replace(tmp, self.keys_path)


ACTIVE: PageWriter | None = None


def get_writer(_pelican: Any) -> type[PageWriter]:
    return PageWriter


def finish() -> None:
    global ACTIVE
    writer, ACTIVE = ACTIVE, None
    if writer is not None:
        writer.finish()
