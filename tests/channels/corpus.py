"""Texts that make counting hard: hand-written cases and generated mixtures (seeded, so every run
checks the same ones). Shared by the twitter-text cross-check and the property tests."""

from __future__ import annotations

import random

FAMILY = "👩\u200d👩\u200d👧\u200d👦"
EMOJI = [
    "😂", "👍🏽", FAMILY, "🏳️\u200d🌈", "🇨🇳", "🇩🇪", "1️⃣", "❤️", "🧑🏻\u200d🍳", "🤷🏽\u200d♀️",
    "👨\u200d🦰\u200d🐈",  # a ZWJ join no emoji list has
    "🐈\u200d⬛", "👍\u0301",  # emoji + combining mark
    "☺", "©", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
]  # fmt: skip
CJK = [
    "厦门老房子",
    "防潮",
    "藤椅",
    "。",
    "，",
    "！",
    "？",
    "：",
    "；",
    "「引号」",
    "（括号）",
    "わたし",
    "한국어",
]
RTL = ["مرحبا بالعالم", "שלום", "\u200f", "\u202bעברית\u202c"]
MARKS = ["e\u0301", "a\u0308\u0323", "n\u0303", "\u0915\u094d\u0937", "\u0e01\u0e34"]
LATIN = ["Altbau", "Kreuzberg", "floor", "the", "a", "Möbel", "straße", "—", "“quoted”", "…"]
URLS = [
    "https://cedarandclay.com/stories/x.html",
    "https://de.wikipedia.org/wiki/Altbau_(Berlin)",
    "http://127.0.0.1:8000/stories/xiamen-kitchen.html",
    "https://t.cedarandclay.example/go/Ab3dE5gH7j",
    "https://例子.cn/路径",
    "https://shop.example.com/p?q=1&r=2",
    "example.com",
    "www.cedarandclay.de/angebot",
    "https://t.co/abcdefghij",
    "http://localhost:8000/x",
]
PUNCT = [".", ",", "!", "?", ")", "。", "，", "！", "）", "…", "...", ":", ";", "'", '"']
SPACE = [" ", " ", " ", "\n", "\n\n", "\u3000", "\r\n", ""]

HAND_WRITTEN = [
    "",
    "a" * 280,
    "a" * 281,
    "汉" * 140,
    "汉" * 141,
    "看这里https://example.com/x.html了解更多细节",
    "看这里https://cedarandclay.com/stories/x.html。",
    "see https://de.wikipedia.org/wiki/Altbau_(Berlin).",
    "(https://cedarandclay.com/a)",
    "（https://cedarandclay.com/a）",
    "https://cedarandclay.com/a…",
    "https://cedarandclay.com/a...",
    "go to example.com now",
    "go to example.com了解",
    "http://127.0.0.1:8000/stories/x.html",
    "http://127.0.0.1:8000/stories/x.html了解更多",
    FAMILY * 140,
    FAMILY * 141,
    "👍\u0301" * 10,
    "👨\u200d🦰\u200d🐈 and 🐈\u200d⬛",
    "e\u0301" * 280,
    "\ufeffhidden",
    "bad \uffff char",
    "\u2028line separator",
    "—“quoted”‘single’…",
    "@bob@mastodon.social hi",
    "#话题# 和 #另一个话题#",
    "x" * 257 + " https://cedarandclay.com/a",
    "x" * 258 + " https://cedarandclay.com/a",
    "मनुष्य " * 20,
    "Ærøskøbing ÅØÆ " * 10,
    "\U0001f600" * 141,
    "한국어 텍스트 " * 30,
    "ｆｕｌｌ ｗｉｄｔｈ ａｓｃｉｉ",
    "https://cedarandclay.com/a,https://cedarandclay.com/b",
    "مرحبا https://cedarandclay.com/ar بالعالم",
    "multiple\r\nline\rendings\n",
]


def generated(count: int, seed: int = 20261201) -> list[str]:
    """Mixtures of every piece above, of lengths from a few to well past 280 weighted."""
    rng = random.Random(seed)
    pools = [EMOJI, CJK, RTL, MARKS, LATIN, URLS, PUNCT]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 60)):
            pool = rng.choice(pools)
            parts.append(rng.choice(pool))
            parts.append(rng.choice(SPACE))
        out.append("".join(parts))
    return out


def corpus() -> list[str]:
    return HAND_WRITTEN + generated(260)
