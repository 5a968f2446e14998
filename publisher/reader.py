"""Pelican's Markdown reader, with one parser per build instead of one per file.

Pelican builds a new ``markdown.Markdown`` for every file it reads: registering the extensions
again costs about 0.2 ms a file, 8 % of the main process in a 1,000-story cold build.
Python-Markdown's documented way to convert many documents with one instance is ``reset()``
between them, which clears every extension's state (footnotes, abbreviations, ids, ``Meta``).
What the reader returns is unchanged; ``tests/test_reader.py`` compares it with Pelican's own.
"""

from __future__ import annotations

from typing import Any

from markdown import Markdown
from pelican import readers
from pelican.utils import pelican_open


class MarkdownReader(readers.MarkdownReader):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parsers: tuple[Markdown, Markdown] | None = None

    def read(self, source_path: str) -> tuple[str, dict[str, Any]]:
        if self._parsers is None:
            # two parsers: the document's, and the one Pelican's _parse_metadata converts
            # formatted fields (Summary) with, after taking its "meta" preprocessor out
            self._parsers = (
                Markdown(**self.settings["MARKDOWN"]),
                Markdown(**self.settings["MARKDOWN"]),
            )
            self._meta = self._parsers[1].preprocessors["meta"]
        document, fields = self._parsers
        self._source_path = source_path
        with pelican_open(source_path) as text:
            content = document.reset().convert(text)
        if "meta" not in fields.preprocessors:  # taken out again at once, so any priority
            fields.preprocessors.register(self._meta, "meta", 0)
        self._md = fields
        return content, self._parse_metadata(document.Meta)


def use_reader(pelican_readers: Any) -> None:
    """``readers_init`` handler: read ``.md`` files with :class:`MarkdownReader` unless the
    settings name another reader for them."""
    for extension in MarkdownReader.file_extensions:
        if pelican_readers.reader_classes.get(extension) is readers.MarkdownReader:
            pelican_readers.reader_classes[extension] = MarkdownReader
