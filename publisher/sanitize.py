"""The one allow-list every story's HTML passes before it reaches a page, the manifest or a
channel: what Markdown writes (and the raw HTML docs/CONTENT.md allows editors) stays, anything
that could run a script goes.

nh3 (the Rust ``ammonia`` sanitiser) parses the markup as a browser would, so attribute values
are judged after entities are decoded: ``JaVa&#x09;ScRiPt:`` is the same ``javascript:`` as any
other and is dropped. Only the URL schemes in :data:`URL_SCHEMES` survive; relative links (and
Pelican's ``{filename}``/``{static}`` placeholders, which the build replaces later) are kept.
"""

from __future__ import annotations

import html
import re

import nh3

TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
        "dd", "del", "details", "div", "dl", "dt", "em", "figcaption", "figure", "h2", "h3",
        "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q",
        "s", "section", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody",
        "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
    }
)  # fmt: skip
GENERIC_ATTRIBUTES = frozenset({"lang", "dir", "title", "id", "class"})
ATTRIBUTES = {
    "*": set(GENERIC_ATTRIBUTES),
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height", "loading", "decoding"},
    "td": {"colspan", "rowspan", "style"},
    "th": {"colspan", "rowspan", "scope", "style"},
    "ol": {"start", "reversed"},
    "time": {"datetime"},
    "q": {"cite"},
    "blockquote": {"cite"},
    "abbr": {"title"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
STYLE_PROPERTIES = frozenset({"text-align"})  # Markdown's table alignment

# Where a link or source can hide, as an editor may write it in Markdown or raw HTML
_LINK_CONTEXT = re.compile(
    r"(?:\]\(|\]:|<|(?:href|src|action|formaction|xlink:href|poster|srcset)=[\"']?)"
    r"(?P<scheme>javascript|vbscript|data):",
    re.IGNORECASE,
)
# what every match of _LINK_CONTEXT contains: searched first, as it is about fifty times
# faster (the context's alternatives are tried at every character of every line)
_SCHEME = re.compile(r"(?:javascript|vbscript|data):", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]+")


# built once: nh3.clean() builds its sanitiser from the sets on every call, which cost a large
# build about a third of its sanitising time
_CLEANER = nh3.Cleaner(
    tags=set(TAGS),
    attributes={k: set(v) for k, v in ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    filter_style_properties=set(STYLE_PROPERTIES),
    link_rel=None,
    strip_comments=True,
)
_NO_TAGS = nh3.Cleaner(tags=set())


def clean_html(markup: str) -> str:
    """``markup`` with only the allowed tags, attributes and URL schemes left."""
    if not markup:
        return markup
    return _CLEANER.clean(markup)


def strip_tags(markup: str) -> str:
    """``markup`` with every tag taken out (entities stay escaped), as ``nh3.clean(markup,
    tags=set())`` gives it."""
    return _NO_TAGS.clean(markup)


def dangerous_urls(text: str) -> list[str]:
    """The schemes of ``javascript:``, ``vbscript:`` and ``data:`` links or sources in a story's
    source, however they are cased, spaced or written with entities (for `storyloop check`)."""
    if ":" not in text and "&" not in text:
        return []  # no colon, and no entity that could be one: no scheme (most lines of a story)
    flat = _INVISIBLE.sub("", html.unescape(text))
    if not _SCHEME.search(flat):
        return []
    return [m.group("scheme").lower() for m in _LINK_CONTEXT.finditer(flat)]
