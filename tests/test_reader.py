"""The Markdown reader that keeps one parser per build reads exactly what Pelican's own reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from markdown.extensions.abbr import AbbrExtension
from markdown.extensions.footnotes import FootnoteExtension
from markdown.extensions.toc import TocExtension
from pelican import readers
from pelican.settings import DEFAULT_CONFIG, read_settings

from publisher import pelican_plugin
from publisher.reader import MarkdownReader

ROOT = Path(__file__).resolve().parent.parent

# state that a parser used again must not carry from one document to the next
STATEFUL = [
    "Title: Footnotes\nSummary: *One* note[^a].\n\nA claim[^a].\n\n[^a]: The source.\n",
    "Title: Ids\nSummary: Two **ids**\n\n# Kitchen\n\n# Kitchen\n\nText[^a]\n\n[^a]: Again.\n",
    "Title: Abbreviations\n\nThe HTML spec.\n\n*[HTML]: Hyper Text Markup Language\n",
    "Title: None defined here\n\nThe HTML spec, no footnote [^a], no [link][ref].\n",
    "Title: References\n\nA [link][ref].\n\n[ref]: https://example.com/\n",
    "No metadata at all.\n",
    "Title: 中文\nSummary: 六周焕新的**厨房**\n\n老房子的厨房。\n\n# 厨房\n",
]


def sources(tmp_path: Path) -> list[str]:
    paths = sorted(str(p) for p in (ROOT / "content").rglob("*.md"))
    for i, text in enumerate(STATEFUL):
        path = tmp_path / f"s{i}.md"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths


@pytest.mark.parametrize(
    "extensions",
    [[], ["markdown.extensions.toc"], [FootnoteExtension(), TocExtension(), AbbrExtension()]],
    ids=["default", "toc", "extension-objects"],  # objects: both parsers share one instance
)
def test_reads_what_pelicans_reader_reads(tmp_path: Path, extensions: list[object]) -> None:
    settings = read_settings(str(ROOT / "pelicanconf.py"))
    settings["MARKDOWN"]["extensions"] = [*settings["MARKDOWN"].get("extensions", []), *extensions]
    paths = sources(tmp_path)
    # twice over, so every document is also read after every other one; Pelican's reader first
    # and on its own, since an extension object is bound to the parser that was made last
    pelicans = [readers.MarkdownReader(settings).read(path) for path in paths + paths]
    ours = MarkdownReader(settings)
    for path, expected in zip(paths + paths, pelicans, strict=True):
        assert ours.read(path) == expected, path


def test_a_build_with_the_plugin_reads_markdown_with_it() -> None:
    pelican_plugin.register()
    assert type(readers.Readers(dict(DEFAULT_CONFIG)).readers["md"]) is MarkdownReader
    # unless the settings name another reader for Markdown
    other = type("Other", (readers.MarkdownReader,), {})
    chosen = readers.Readers({**DEFAULT_CONFIG, "READERS": {"md": other}})
    assert type(chosen.readers["md"]) is other
    assert type(chosen.readers["markdown"]) is MarkdownReader
