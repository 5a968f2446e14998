"""Story HTML as channels send it: one allow-list for every channel that sends HTML (WeChat,
email, webhook), absolute image and link URLs, and a text version that keeps each link's URL.

The build already sanitises a story's HTML; a channel cleans it again with its own, narrower
list, because what a mail client or WeChat shows is not what a browser on the site shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urljoin

import nh3
from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString

from publisher.model import Story

ALLOWED_TAGS = {
    "p", "br", "strong", "b", "em", "i", "u", "span", "section", "h1", "h2", "h3", "h4",
    "blockquote", "ul", "ol", "li", "img", "a", "table", "thead", "tbody", "tr", "th", "td",
    "pre", "code", "hr", "figure", "figcaption",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"img": {"src", "alt"}, "a": {"href"}, "td": {"colspan"}, "th": {"colspan"}}
BLOCKS = (
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "figcaption", "table", "hr",
)  # fmt: skip


def clean_html(markup: str, base_url: str) -> str:
    """``markup`` reduced to the allow-list (no scripts, styles, classes, event handlers or
    ``javascript:`` links), with every ``img src`` and ``a href`` made absolute against
    ``base_url`` (the story's own URL) so images show in a mail client and links work there."""
    clean = nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style"},
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    )
    soup = BeautifulSoup(clean, "html.parser")
    for tag, attr in (("img", "src"), ("a", "href")):
        for node in soup.find_all(tag):
            if isinstance(node, Tag) and node.get(attr):
                node[attr] = urljoin(base_url, str(node[attr]))
    return str(soup)


def site_root(story: Story, site_url: str | None = None) -> str:
    """The site's address (without a trailing slash): the setting, else what the story's images
    say (an image's URL is the site's address followed by its content path)."""
    if site_url:
        return site_url.rstrip("/")
    for image in story.images:
        if image.url.endswith("/" + image.path):
            return image.url[: -len(image.path) - 1]
    return story.url.rsplit("/", 1)[0]


def image_paths(markup: str, root: str) -> dict[str, str]:
    """Each ``img src`` in ``markup`` that is a file of this site -> its path under content/."""
    soup = BeautifulSoup(markup, "html.parser")
    found: dict[str, str] = {}
    for img in soup.find_all("img"):
        src = str(img.get("src", "")) if isinstance(img, Tag) else ""
        if src.startswith(root + "/"):
            found.setdefault(src, src[len(root) + 1 :].split("?")[0].split("#")[0])
    return found


def text_with_links(markup: str, links: Mapping[str, str]) -> str:
    """The HTML as plain text, paragraphs apart, each link written as ``words (url)`` with its
    tracked URL (a text part that dropped the URLs would lose every link)."""
    soup = BeautifulSoup(markup, "html.parser")
    for a in soup.find_all("a"):
        if not isinstance(a, Tag):
            continue
        href = str(a.get("href") or "")
        url = links.get(href, href)
        words = " ".join(a.get_text(" ").split())
        label = url if not words or words in (href, url) else f"{words} ({url})"
        a.replace_with(NavigableString(label))
    for img in soup.find_all("img"):
        if isinstance(img, Tag):
            img.replace_with(NavigableString(str(img.get("alt") or "")))
    for tr in soup.find_all("tr"):
        if isinstance(tr, Tag):
            cells = [" ".join(c.get_text(" ").split()) for c in tr.find_all(["td", "th"])]
            tr.replace_with(NavigableString(" | ".join(cells) + "\n"))
    for br in soup.find_all("br"):
        br.replace_with(NavigableString("\n"))
    for block in soup.find_all(BLOCKS):
        if isinstance(block, Tag):
            block.insert_after(NavigableString("\n\n"))
    lines = [" ".join(line.split()) for line in soup.get_text().split("\n")]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()
