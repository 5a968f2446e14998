"""Text the way each network counts it, and truncation that keeps what must survive.

Every network counts differently: Mastodon and Bluesky count grapheme clusters (Mastodon counts
every URL as 23), X weighs code points after NFC (CJK and emoji count 2, a URL 23), Weibo counts
汉字 with two ASCII characters as one, Telegram counts UTF-16 code units. Truncation never splits
a grapheme cluster or a URL, prefers a sentence end, then a word boundary (between CJK characters
or after CJK punctuation counts as one), and ends with "…".
"""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import regex

from publisher.model import Story

ELLIPSIS = "…"
URL_RE = regex.compile(r"https?://[^\s<>\"'，。！？、；）」』】]+")
_TRAILING_PUNCT = ".,;:!?)]}'\""
SENTENCE_END = frozenset(".!?。！？；;")
CJK_BREAK_AFTER = frozenset("。！？；，、：")
_CJK_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
_PICTO_RE = regex.compile(r"\p{Extended_Pictographic}")

Counter = Callable[[str], int]

OFFER_LABELS = {"zh": "优惠码", "de": "Code", "ja": "クーポン", "fr": "Code", "es": "Código"}


# --------------------------------------------------------------------------- URLs


def find_urls(text: str) -> list[tuple[int, int]]:
    """Spans (start, end) of URLs in ``text``, trailing sentence punctuation left outside."""
    spans = []
    for m in URL_RE.finditer(text):
        start, end = m.span()
        while end > start and text[end - 1] in _TRAILING_PUNCT:
            end -= 1
        spans.append((start, end))
    return spans


def rewrite_urls(text: str, links: Mapping[str, str]) -> str:
    """Every URL in a plain text replaced by its tracked link, when there is one."""
    out, last = [], 0
    for start, end in find_urls(text):
        out.append(text[last:start])
        url = text[start:end]
        out.append(links.get(url, url))
        last = end
    out.append(text[last:])
    return "".join(out)


def _without_urls(text: str) -> tuple[str, int]:
    spans = find_urls(text)
    parts, last = [], 0
    for start, end in spans:
        parts.append(text[last:start])
        last = end
    parts.append(text[last:])
    return "".join(parts), len(spans)


# --------------------------------------------------------------------------- counting


def graphemes(text: str) -> list[str]:
    return list(regex.findall(r"\X", text))


def count_graphemes(text: str, url_weight: int | None = None) -> int:
    if url_weight is None:
        return len(graphemes(text))
    rest, n = _without_urls(text)
    return len(graphemes(rest)) + n * url_weight


def _x_weight(cluster: str) -> int:
    if _PICTO_RE.search(cluster):
        return 2  # twitter-text counts a whole emoji sequence as one weighted emoji
    return sum(1 if _x_light(ord(ch)) else 2 for ch in cluster)


def _x_light(cp: int) -> bool:
    return cp <= 4351 or 8192 <= cp <= 8205 or 8208 <= cp <= 8223 or 8242 <= cp <= 8247


def count_weighted(text: str, url_weight: int = 23) -> int:
    """X's weighted length (twitter-text v3): NFC, light ranges weigh 1, the rest 2, URL 23."""
    rest, n = _without_urls(unicodedata.normalize("NFC", text))
    return sum(_x_weight(c) for c in graphemes(rest)) + n * url_weight


def count_hanzi(text: str, url_weight: int | None = None) -> int:
    """Weibo's count: a 汉字 (or any non-ASCII character) is 1, two ASCII characters are 1."""
    if url_weight is None:
        rest, extra = text, 0
    else:
        rest, n = _without_urls(text)
        extra = n * url_weight * 2
    halves = sum(1 if ord(ch) < 128 else 2 for ch in rest) + extra
    return math.ceil(halves / 2)


def count_utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def counter_for(counting: str, url_weight: int | None = None) -> Counter:
    """The counting function named by a :class:`channels.base.LengthRule`."""
    if counting == "graphemes":
        return lambda t: count_graphemes(t, url_weight)
    if counting == "weighted":
        return lambda t: count_weighted(t, url_weight or 23)
    if counting == "hanzi":
        return lambda t: count_hanzi(t, url_weight)
    if counting == "utf16":
        return count_utf16
    return len


def rule_counter(
    counting: str, url_weight: int | None, limit: int, max_bytes: int | None
) -> Counter:
    """A counter for a rule; a byte cap is folded in by scaling bytes onto the same limit."""
    count = counter_for(counting, url_weight)
    if not max_bytes or not limit:
        return count
    return lambda t: max(count(t), math.ceil(len(t.encode("utf-8")) * limit / max_bytes))


# --------------------------------------------------------------------------- truncation


def is_cjk(cluster: str) -> bool:
    return bool(cluster) and bool(_CJK_RE.match(cluster))


@dataclass(frozen=True)
class _Cut:
    end: int  # number of clusters kept
    sentence: bool


def _cuts(clusters: list[str], text: str) -> tuple[list[_Cut], list[_Cut]]:
    """Soft cuts (sentence/word boundaries) and hard cuts (any cluster boundary) outside URLs."""
    inside = _positions_inside_urls(clusters, text)
    soft, hard = [], []
    for i in range(1, len(clusters)):
        if i in inside:
            continue
        prev, nxt = clusters[i - 1], clusters[i]
        hard.append(_Cut(i, False))
        if prev in SENTENCE_END and (nxt.isspace() or prev in CJK_BREAK_AFTER):
            soft.append(_Cut(i, True))
        elif nxt.isspace() or prev in CJK_BREAK_AFTER or (is_cjk(prev) and is_cjk(nxt)):
            soft.append(_Cut(i, False))
    return soft, hard


def _positions_inside_urls(clusters: list[str], text: str) -> set[int]:
    spans = find_urls(text)
    if not spans:
        return set()
    inside, offset = set(), 0
    for i, cluster in enumerate(clusters):
        if any(start < offset < end for start, end in spans):
            inside.add(i)
        offset += len(cluster)
    return inside


def truncate(text: str, budget: int, count: Counter, ellipsis: str = ELLIPSIS) -> str:
    """``text`` cut to fit ``budget`` as counted by ``count``, ending in ``ellipsis`` when cut."""
    if count(text) <= budget:
        return text
    clusters = graphemes(text)
    soft, hard = _cuts(clusters, text)

    def fits(cut: _Cut) -> bool:
        return count(_prefix(clusters, cut.end) + ellipsis) <= budget

    best = _last_fitting(soft, fits)
    if best is not None:
        sentence = _last_fitting([c for c in soft if c.sentence and c.end <= best.end], fits)
        if sentence is not None and sentence.end * 2 >= best.end:
            best = sentence
    else:
        best = _last_fitting(hard, fits)
    if best is None:
        return ""
    return _prefix(clusters, best.end) + ellipsis


def _prefix(clusters: list[str], end: int) -> str:
    return "".join(clusters[:end]).rstrip(" \t\n,，、;；:：")


def _last_fitting(cuts: list[_Cut], fits: Callable[[_Cut], bool]) -> _Cut | None:
    """Binary search: counts grow with the prefix, so the fitting cuts come first."""
    lo, hi, found = 0, len(cuts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(cuts[mid]):
            found, lo = cuts[mid], mid + 1
        else:
            hi = mid - 1
    return found


# --------------------------------------------------------------------------- composing a post


def offer_line(story: Story, offer_code: str | None) -> str:
    """The offer text with its code, in the story's language; "" when there is neither."""
    label = OFFER_LABELS.get(story.lang.split("-")[0], "Code")
    if story.offer and offer_code:
        return f"{story.offer} · {label}: {offer_code}"
    if offer_code:
        return f"{label}: {offer_code}"
    return story.offer or ""


def story_body(story: Story, variant: str | None, override: str | None) -> str:
    """The editor's text for this channel, or the headline and summary."""
    if override:
        return override.strip()
    headline = story.headline(variant).strip()
    summary = story.summary.strip()
    if not summary or summary == headline:
        return headline
    return f"{headline}\n\n{summary}"


def compose(
    body: str,
    tail: Iterable[str],
    limit: int | None,
    count: Counter,
    sep: str = "\n\n",
) -> str:
    """``body`` then the ``tail`` parts (offer, link), cutting only the body to fit ``limit``."""
    kept = [t for t in tail if t]
    if limit is None:
        return sep.join([body, *kept]) if body else sep.join(kept)
    tail_text = sep.join(kept)
    room = limit - count(tail_text) - (count(sep) if kept else 0)
    cut = truncate(body, room, count) if room > 0 else ""
    if cut:
        return sep.join([cut, *kept])
    return tail_text


def fit_offer(line: str, code: str | None, room: int, count: Counter) -> str:
    """An offer line cut to ``room`` while its code stays whole at the end."""
    if count(line) <= room or not code or not line.endswith(code):
        return line
    head = line[: -len(code)]
    return truncate(head.rstrip(" :·"), room - count(" · " + code), count) + " · " + code


def standard_text(
    story: Story,
    variant: str | None,
    links: Mapping[str, str],
    offer_code: str | None,
    limit: int | None,
    count: Counter,
    override: str | None = None,
) -> str:
    """The usual short post: headline and summary (or override), the offer, the tracked link."""
    link = links.get(story.url, story.url)
    body = rewrite_urls(story_body(story, variant, override), links)
    tail = [offer_line(story, offer_code)]
    if link not in body:
        tail.append(link)
    else:
        body, tail = _keep_link_in_tail(body, link, tail)
    if limit is not None:
        room = limit - (count(link) if link in tail else 0) - count("\n\n") * 2
        tail[0] = fit_offer(tail[0], offer_code, max(room, 1), count)
    return compose(body, tail, limit, count)


def _keep_link_in_tail(body: str, link: str, tail: list[str]) -> tuple[str, list[str]]:
    """An override that already shows the story link: move it to the end so truncation keeps it."""
    if body.rstrip().endswith(link):
        return body.rstrip()[: -len(link)].rstrip(), [*tail, link]
    return body.replace(link, "").replace("  ", " ").strip(), [*tail, link]


def escape_html(text: str) -> str:
    """Telegram's HTML mode: escape only &, < and >."""
    return html.escape(text, quote=False)


def byte_span(text: str, start: int, end: int) -> tuple[int, int]:
    """UTF-8 byte offsets of the character span [start, end) of ``text``."""
    b = len(text[:start].encode("utf-8"))
    return b, b + len(text[start:end].encode("utf-8"))


_HREF_RE = regex.compile(r"""(<a\b[^>]*?\bhref=)(["'])(.*?)\2""", regex.IGNORECASE)


def rewrite_html_links(markup: str, links: Mapping[str, str]) -> str:
    """Every ``<a href>`` in rendered HTML pointed at its tracked link, when there is one."""

    def swap(m: regex.Match[str]) -> str:
        url = html.unescape(m.group(3))
        return f"{m.group(1)}{m.group(2)}{html.escape(links.get(url, url))}{m.group(2)}"

    return str(_HREF_RE.sub(swap, markup))
