"""Text the way each network counts it, and truncation that keeps what must survive.

One link extractor serves counting, tracked-link rewriting and Bluesky facets: twitter-text's
URL grammar (the ``twitter-text-parser`` port of the library X's and Mastodon's servers use), so
a URL ends where CJK text starts, keeps balanced parentheses and leaves trailing ASCII and
full-width punctuation outside. Each network's count follows its own code (see docs/CHANNELS.md):
X is twitter-text's v3 weighted length itself, Mastodon counts grapheme clusters with URLs at 23
and remote mentions as their local part, Weibo counts UTF-16 units in halves, Telegram UTF-16
units, Bluesky graphemes and UTF-8 bytes. Truncation never splits a grapheme cluster or a URL,
prefers a sentence end, then a word boundary, and ends with "…".
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import regex
from markdown_it import MarkdownIt

from publisher.model import Story

ELLIPSIS = "…"
SENTENCE_END = frozenset(".!?。！？；;")
CJK_BREAK_AFTER = frozenset("。！？；，、：")
_CJK_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")

Counter = Callable[[str], int]
Span = tuple[int, int]

OFFER_LABELS = {"zh": "优惠码", "de": "Code", "ja": "クーポン", "fr": "Code", "es": "Código"}


# --------------------------------------------------------------------------- URLs

# twitter-text's URL grammar with the protocol required and the host widened to any host name
# or address: twitter-text only knows public TLDs, but a site on 127.0.0.1 or a staging domain
# still has links to track. Path, query and ending rules are twitter-text's own.
_ASCII_HOST = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"


@cache
def twitter() -> Any:
    """The twitter-text port, imported on first use: it builds its emoji pattern from the
    Unicode emoji list at import (most of a second), which a build that never meets a URL or
    counts for X should not pay."""
    import sys

    import twitter_text

    # The port checks a domain with Python's IDNA 2003 codec, which refuses labels the official
    # package accepts (mixed scripts, "。" as a separator); use the official package's check.
    vars(sys.modules["twitter_text.extract_urls"])["is_valid_url"] = _official_is_valid_url
    return twitter_text


_LABEL_SEPARATORS = re.compile("[\u3002\uff0e\uff61]")


def _official_is_valid_url(url: str, protocol: str, domain: str) -> bool:
    """twitter-text's isValidUrl (its idna.toAscii): every label, punycode-encoded the way
    punycode.js does it, is 1 to 63 characters; the whole URL at most 4096."""
    from twitter_text.regexp.valid_ascii_domain import valid_ascii_domain

    if domain.startswith("xn--") and not valid_ascii_domain.search(domain):
        return False
    for label in domain.split("."):
        parts = _LABEL_SEPARATORS.sub(".", label).split(".")
        encoded = ".".join(
            p if p.isascii() else "xn--" + p.encode("punycode").decode() for p in parts
        )
        if not 1 <= len(encoded) <= 63:
            return False
    return len(protocol) + len(url) <= 4096


@cache
def url_re() -> re.Pattern[str]:
    twitter()
    from twitter_text.regexp.valid_domain import valid_domain
    from twitter_text.regexp.valid_url_path import valid_url_path
    from twitter_text.regexp.valid_url_preceding_chars import valid_url_preceding_chars
    from twitter_text.regexp.valid_url_query_chars import valid_url_query_chars
    from twitter_text.regexp.valid_url_query_ending_chars import valid_url_query_ending_chars

    return re.compile(
        f"({valid_url_preceding_chars.pattern})"
        f"(https?://(?:{_ASCII_HOST}(?![a-z0-9-])|{valid_domain.pattern})"
        f"(?::[0-9]+)?(?:/{valid_url_path.pattern}*)?"
        f"(?:\\?{valid_url_query_chars.pattern}*{valid_url_query_ending_chars.pattern})?)",
        re.IGNORECASE,
    )


# Mastodon's server ends a URL before these (its valid_url_path_ending_chars), where
# twitter-text may keep some of them: counted as text after the 23, the safe side.
_MASTODON_URL_END_EXCLUDED = "()?!*\"'「」<>;:=,.$%[]~&|"
# Mastodon's Account::MENTION_RE: @user or @user@domain; a remote one counts as @user.
_MENTION_RE = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@[\w]+(?:[.-]+[\w]+)*)?", regex.IGNORECASE
)


def find_urls(text: str) -> list[Span]:
    """Spans (start, end) of the http(s) URLs in ``text``, by twitter-text's rules."""
    if "://" not in text:
        return []
    return [_whole_graphemes(text, *_no_empty_fragment(m)) for m in url_re().finditer(text)]


def _no_empty_fragment(m: re.Match[str]) -> Span:
    """A URL's span without a final bare ``#`` (an empty fragment): twitter-text keeps it, but
    in ``…/x.html#话题#`` it opens the editor's Weibo topic."""
    start, end = m.span(2)
    return (start, end - 1) if m.group(2).endswith("#") else (start, end)


_GRAPHEME = regex.compile(r"\X")


def _whole_graphemes(text: str, start: int, end: int) -> Span:
    """A URL ending inside a grapheme cluster (``…/x.html1️⃣``: the keycap's digit) ends before
    that cluster instead, so rewriting the link never splits it."""
    if end >= len(text) or not unicodedata.category(text[end]).startswith(("M", "Cf")):
        return start, end
    at = start
    for m in _GRAPHEME.finditer(text, start, end + 1):
        if m.end() > end:
            return start, max(m.start(), at)
        at = m.end()
    return start, end


def _separated(text: str, end: int) -> bool:
    """Whether what follows a URL ending at ``end`` cannot be read as part of it by any network:
    whitespace, the end, or ASCII punctuation (which every linkifier leaves outside)."""
    if end >= len(text):
        return True
    nxt = text[end]
    return nxt.isspace() or (nxt.isascii() and not nxt.isalnum() and nxt not in "/_-~=+&#@%")


def rewrite_urls(text: str, links: Mapping[str, str]) -> str:
    """Every URL in a plain text replaced by its tracked link, when there is one. A URL glued to
    the following words (``…/x.html了解更多``) gets a space after it: Mastodon's and Telegram's
    linkifiers would otherwise take those words into the link."""
    out, last = [], 0
    for start, end in find_urls(text):
        out.append(text[last:start])
        url = text[start:end]
        out.append(links.get(url, url))
        if not _separated(text, end):
            out.append(" ")
        last = end
    out.append(text[last:])
    return "".join(out)


# --------------------------------------------------------------------------- counting


def graphemes(text: str) -> list[str]:
    return list(regex.findall(r"\X", text))


def count_graphemes(text: str, url_weight: int | None = None) -> int:
    if url_weight is None:
        return len(graphemes(text))
    return count_mastodon(text, url_weight)


def count_mastodon(text: str, url_weight: int = 23) -> int:
    """Mastodon's StatusLengthValidator: grapheme clusters after each URL (with a protocol, by
    twitter-text) becomes ``url_weight`` characters and each remote mention its local part."""
    entities = [
        (s, e, "x" * url_weight + _mastodon_url_tail(text[s:e]))
        for s, e in _twitter_urls(text, with_protocol_only=True)
    ]
    taken = [(s, e) for s, e, _ in entities]
    for m in _MENTION_RE.finditer(text):
        if not any(s < m.end() and m.start() < e for s, e in taken):
            entities.append((m.start(), m.end(), "@" + m.group(1)))
    out, last = [], 0
    for start, end, replacement in sorted(entities):
        out += [text[last:start], replacement]
        last = end
    out.append(text[last:])
    return len(graphemes("".join(out)))


def _mastodon_url_tail(url: str) -> str:
    excluded = _MASTODON_URL_END_EXCLUDED
    if url.count("(") == url.count(")"):
        excluded = excluded.replace(")", "")  # balanced parentheses end a URL there too
    core = url.rstrip(excluded)
    return url[len(core) :]


def _twitter_urls(text: str, with_protocol_only: bool = False) -> list[Span]:
    found = twitter().extract_urls_with_indices(text, not with_protocol_only)
    return [(int(u["indices"][0]), int(u["indices"][1])) for u in found]


@cache
def _x_emoji() -> re.Pattern[str]:
    from channels.twemoji import UTF16_PATTERN

    return re.compile(UTF16_PATTERN)


def _x_config() -> Mapping[str, Any]:
    return twitter().config.config["version3"]  # type: ignore[no-any-return]


def _utf16_units(text: str) -> str:
    """``text`` as a string of UTF-16 code units (surrogates as characters), as JavaScript sees
    it: the official twitter-text and its emoji pattern index and match on these."""
    raw = text.encode("utf-16-le", "surrogatepass")
    return "".join(chr(raw[i] | raw[i + 1] << 8) for i in range(0, len(raw), 2))


def parse_tweet(text: str, url_weight: int = 23) -> tuple[int, bool]:
    """twitter-text v3's parseTweet (weightedLength, valid), step for step as the official
    package computes it: NFC, then over UTF-16 units each URL twitter-text recognises weighs
    ``url_weight``, each emoji its pattern matches weighs 2, every other character by the code
    point ranges (1 for Latin, general punctuation; 2 for the rest)."""
    config = _x_config()
    scale, default = int(config["scale"]), int(config["default_weight"])
    normalized = unicodedata.normalize("NFC", text)
    units = _utf16_units(normalized)
    offsets = _unit_offsets(normalized)
    urls = {offsets[s]: offsets[e] for s, e in _twitter_urls(normalized)}
    emoji = {m.start(): m.end() for m in _x_emoji().finditer(units)}
    invalid = twitter().has_invalid_characters.has_invalid_characters
    weighted, valid, i = 0, True, 0
    while i < len(units):
        if i in urls:
            weighted += url_weight * scale
            i = urls[i] - 1
        elif i in emoji:
            weighted += default
            i = emoji[i] - 1
        else:
            high = 0xD800 <= ord(units[i]) <= 0xDBFF
            if high and i + 1 < len(units) and 0xDC00 <= ord(units[i + 1]) <= 0xDFFF:
                i += 1
            weighted += _x_char_weight(ord(units[i]), config)
        if valid and not _unit_is_surrogate(units[i]):
            valid = not invalid(units[i])
        i += 1
    length = weighted // scale
    return length, valid and 0 < length <= int(config["max_weighted_tweet_length"])


def _unit_is_surrogate(unit: str) -> bool:
    return 0xD800 <= ord(unit) <= 0xDFFF


def _unit_offsets(text: str) -> list[int]:
    """UTF-16 offset of each code point index of ``text`` (and of its end)."""
    out, at = [], 0
    for ch in text:
        out.append(at)
        at += 2 if ord(ch) > 0xFFFF else 1
    out.append(at)
    return out


def _x_char_weight(unit: int, config: Mapping[str, Any]) -> int:
    for r in config["ranges"]:
        if int(r["start"]) <= unit <= int(r["end"]):
            return int(r["weight"])
    return int(config["default_weight"])


def count_weighted(text: str, url_weight: int = 23) -> int:
    """X's weighted length by twitter-text v3 (see :func:`parse_tweet`); a URL twitter-text does
    not recognise (``http://127.0.0.1:8000/…``) counts at its own length."""
    return parse_tweet(text, url_weight)[0]


def x_valid(text: str) -> bool:
    """twitter-text's ``valid``: within 280 weighted, not empty, no invalid characters."""
    return parse_tweet(text)[1]


WEIBO_LINK_HALVES = 20  # Weibo's composer: a link up to 140 bytes costs 10 汉字
WEIBO_LINK_BYTES = 140


def _weibo_halves(text: str) -> int:
    """Two halves per UTF-16 unit outside ASCII, one for ASCII."""
    return sum(1 if ord(ch) < 0x80 else (4 if ord(ch) > 0xFFFF else 2) for ch in text)


def count_weibo(text: str, fixed_links: bool = False) -> int:
    """Weibo's count in 汉字: halves of UTF-16 units, rounded up. With ``fixed_links`` a link costs
    what Weibo's composer charges (10 汉字 up to 140 bytes, then one half per byte more); without,
    the larger of that and its own length, since share.json's own rule is unpublished."""
    halves, last = 0, 0
    for start, end in find_urls(text):
        halves += _weibo_halves(text[last:start])
        own = _weibo_halves(text[start:end])
        fixed = WEIBO_LINK_HALVES + max(0, own - WEIBO_LINK_BYTES)
        halves += fixed if fixed_links else max(own, fixed)
        last = end
    halves += _weibo_halves(text[last:])
    return math.ceil(halves / 2)


def count_hanzi(text: str, url_weight: int | None = None) -> int:
    """Weibo's count (kept under its old name)."""
    return count_weibo(text, fixed_links=url_weight is not None)


def count_utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def counter_for(counting: str, url_weight: int | None = None) -> Counter:
    """The counting function named by a :class:`channels.base.LengthRule`."""
    if counting == "mastodon":
        return lambda t: count_mastodon(t, url_weight or 23)
    if counting == "graphemes":
        return lambda t: count_graphemes(t, url_weight)
    if counting == "weighted":
        return lambda t: count_weighted(t, url_weight or 23)
    if counting in ("weibo", "hanzi"):
        return lambda t: count_weibo(t, fixed_links=bool(url_weight))
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


_PICTOGRAPHIC = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")


def _wordlike_pair(prev: str, nxt: str) -> bool:
    """Two CJK characters, or two emoji, may be parted like words."""
    if is_cjk(prev) and is_cjk(nxt):
        return True
    return bool(_PICTOGRAPHIC.match(prev)) and bool(_PICTOGRAPHIC.match(nxt))


def is_cjk(cluster: str) -> bool:
    return bool(cluster) and bool(_CJK_RE.match(cluster))


@dataclass(frozen=True)
class _Cut:
    end: int  # number of clusters kept
    sentence: bool


def _cuts(
    clusters: list[str], text: str, protected: Sequence[Span] = ()
) -> tuple[list[_Cut], list[_Cut]]:
    """Soft cuts (sentence/word boundaries) and hard cuts (any cluster boundary) outside URLs
    and outside the ``protected`` spans (a Weibo topic, for example)."""
    inside = _positions_inside(clusters, [*find_urls(text), *protected])
    soft, hard = [], []
    for i in range(1, len(clusters)):
        if i in inside:
            continue
        prev, nxt = clusters[i - 1], clusters[i]
        hard.append(_Cut(i, False))
        if prev in SENTENCE_END and (nxt.isspace() or prev in CJK_BREAK_AFTER):
            soft.append(_Cut(i, True))
        elif nxt.isspace() or prev in CJK_BREAK_AFTER or _wordlike_pair(prev, nxt):
            soft.append(_Cut(i, False))
    return soft, hard


def _positions_inside(clusters: list[str], spans: Sequence[Span]) -> set[int]:
    if not spans:
        return set()
    inside, offset = set(), 0
    for i, cluster in enumerate(clusters):
        if any(start < offset < end for start, end in spans):
            inside.add(i)
        offset += len(cluster)
    return inside


def truncate(
    text: str,
    budget: int,
    count: Counter,
    ellipsis: str = ELLIPSIS,
    protected: Sequence[Span] = (),
) -> str:
    """``text`` cut to fit ``budget`` as counted by ``count``, ending in ``ellipsis`` when cut.

    A cut right after a URL puts a space before the ellipsis: glued, some linkifiers (Mastodon's)
    would take it into the link."""
    if count(text) <= budget:
        return text
    clusters = graphemes(text)
    soft, hard = _cuts(clusters, text, protected)

    def ending(cut: _Cut) -> str:
        prefix = _prefix(clusters, cut.end)
        spans = find_urls(prefix)
        glued = bool(spans) and spans[-1][1] == len(prefix)
        return prefix + (" " if glued else "") + ellipsis

    def fits(cut: _Cut) -> bool:
        return count(ending(cut)) <= budget

    best = _last_fitting(soft, fits)
    if best is not None:
        sentence = _last_fitting([c for c in soft if c.sentence and c.end <= best.end], fits)
        if sentence is not None and sentence.end * 2 >= best.end:
            best = sentence
    else:
        best = _last_fitting(hard, fits)
    if best is None:
        return ""
    return ending(best)


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


# --------------------------------------------------------------------------- Markdown to text

_md: MarkdownIt | None = None
# a byte-order mark and the non-characters twitter-text refuses: never wanted in a post
_NOT_TEXT = re.compile("[\ufeff\ufffe\uffff]")
_MARKUP = re.compile(r"[*_`\[\]<>&\\!]")  # a text without these is plain already
_LEFTOVER_EMPHASIS = regex.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")


def plain(text: str) -> str:
    """A title, summary or headline written in Markdown (or with HTML and entities) as the plain
    text a post shows: ``**bold**`` -> bold, ``[words](url)`` -> ``words url`` (so the URL is
    tracked like any other), ``&amp;`` -> ``&``, tags dropped, lines kept."""
    global _md
    text = _NOT_TEXT.sub("", text)
    if not _MARKUP.search(text):
        return text
    if _md is None:
        _md = MarkdownIt("commonmark")
    out: list[str] = []
    hrefs: list[tuple[str, int]] = []
    for line in text.split("\n"):
        tokens = _md.parseInline(line)[0].children or []
        for tok in tokens:
            if tok.type in ("text", "code_inline") or tok.type == "image":
                out.append(tok.content)
            elif tok.type == "html_inline" and not _INLINE_TAG.match(tok.content):
                out.append(tok.content)  # "<restored>" is words in angle brackets, not a tag
            elif tok.type in ("softbreak", "hardbreak"):
                out.append("\n")
            elif tok.type == "link_open":
                hrefs.append((str(tok.attrs.get("href", "")), len(out)))
            elif tok.type == "link_close" and hrefs:
                href, at = hrefs.pop()
                words = "".join(out[at:]).strip()
                if href and words != href:
                    out.append(f" {href}" if words else href)
        out.append("\n")
    result = "".join(out).rstrip("\n")
    # CommonMark leaves ** unparsed next to CJK punctuation (“**粗体**”): drop the pair anyway
    return str(_LEFTOVER_EMPHASIS.sub(r"\2", result))


_INLINE_TAG = regex.compile(
    r"</?(?:a|abbr|b|bdi|bdo|br|cite|code|del|dfn|em|font|i|img|ins|kbd|mark|q|s|samp|small|"
    r"span|strong|sub|sup|time|u|var|wbr)\b",
    regex.IGNORECASE,
)
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_SKIPPED_BLOCKS = {*_HEADINGS, "figure", "table", "pre", "ul", "ol", "hr", "script", "style"}


def auto_summary(markup: str, limit: int = 280) -> str:
    """A summary for a story whose editor wrote none: its first paragraphs (never a heading, a
    list or a figure caption) cut on a sentence or word boundary to ``limit`` graphemes."""
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(markup, "html.parser")
    parts: list[str] = []
    for node in soup.find_all(["p", "blockquote", *_SKIPPED_BLOCKS]):
        if not isinstance(node, Tag) or node.name in _SKIPPED_BLOCKS:
            continue
        if node.find_parent(list(_SKIPPED_BLOCKS)) is not None:
            continue
        words = " ".join(node.get_text(" ").split())
        if words:
            parts.append(words)
        if count_graphemes(" ".join(parts)) > limit:
            break
    return truncate(" ".join(parts), limit, count_graphemes)


def bcp47(lang: str) -> str:
    """A language tag as BCP 47 writes it: ``zh_CN`` -> ``zh-CN``, ``zh_hant_tw`` ->
    ``zh-Hant-TW``."""
    parts = [p for p in lang.replace("_", "-").split("-") if p]
    if not parts:
        return "und"
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def one_line(text: str) -> str:
    """Line breaks of any kind (CR, LF, U+2028, U+2029, NEL, …) as single spaces: for subjects
    and titles, where a line break would end the header or the field."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


# --------------------------------------------------------------------------- composing a post


def offer_line(story: Story, offer_code: str | None) -> str:
    """The offer text with its code, in the story's language; "" when there is neither."""
    label = OFFER_LABELS.get(bcp47(story.lang).split("-")[0], "Code")
    offer = one_line(plain(story.offer)) if story.offer else ""
    if offer and offer_code:
        return f"{offer} · {label}: {offer_code}"
    if offer_code:
        return f"{label}: {offer_code}"
    return offer


def story_body(story: Story, variant: str | None, override: str | None) -> str:
    """The editor's text for this channel, or the headline and summary."""
    if override:
        return plain(override).strip()
    headline = one_line(plain(story.headline(variant))).strip()
    summary = plain(story.summary).strip()
    if not summary or summary == headline:
        return headline
    return f"{headline}\n\n{summary}"


def compose(
    body: str,
    tail: Iterable[str],
    limit: int | None,
    count: Counter,
    sep: str = "\n\n",
    protect: Callable[[str], Sequence[Span]] | None = None,
) -> str:
    """``body`` then the ``tail`` parts (offer, link), cutting only the body to fit ``limit``."""
    kept = [t for t in tail if t]
    if limit is None:
        return sep.join([body, *kept]) if body else sep.join(kept)
    tail_text = sep.join(kept)
    room = limit - count(tail_text) - (count(sep) if kept else 0)
    spans = protect(body) if protect else ()
    cut = truncate(body, room, count, protected=spans) if room > 0 else ""
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
    protect: Callable[[str], Sequence[Span]] | None = None,
) -> str:
    """The usual short post: headline and summary (or override), the offer, the tracked link."""
    link = links.get(story.url, story.url)
    body = rewrite_urls(story_body(story, variant, override), links)
    tail = [rewrite_urls(offer_line(story, offer_code), links)]
    if link not in body:
        tail.append(link)
    else:
        body, tail = _keep_link_in_tail(body, link, tail)
    if limit is not None:
        room = limit - (count(link) if link in tail else 0) - count("\n\n") * 2
        tail[0] = fit_offer(tail[0], offer_code, max(room, 1), count)
    return compose(body, tail, limit, count, protect=protect)


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
