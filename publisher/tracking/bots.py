"""Who fetched a tracked link: a reader, or a bot / link-preview fetcher recorded apart.

Fediverse servers fetch a link card the moment a post federates to them, chat apps unfurl links,
crawlers index them: none of those is a person. In-app browsers of WeChat and Weibo are people.
"""

from __future__ import annotations

import re

# Readers whose user agents would otherwise look like apps or previews.
_READERS = re.compile(r"micromessenger|weibo", re.IGNORECASE)

# (name, pattern) in order; the first match names the bot.
_BOTS: tuple[tuple[str, str], ...] = (
    ("mastodon", r"mastodon/|http\.rb"),
    ("pleroma", r"pleroma"),
    ("akkoma", r"akkoma"),
    ("misskey", r"misskey|summalybot"),
    ("fediverse", r"gotosocial|friendica|pixelfed|lemmy|calckey|firefish|sharkey|iceshrimp"),
    ("bluesky", r"cardyb|bluesky"),
    ("telegram", r"telegrambot"),
    ("x", r"twitterbot"),
    ("facebook", r"facebookexternalhit|facebot|meta-externalagent|meta-externalfetcher"),
    ("slack", r"slackbot|slack-imgproxy"),
    ("discord", r"discordbot"),
    ("whatsapp", r"whatsapp"),
    ("linkedin", r"linkedinbot"),
    ("skype", r"skypeuripreview"),
    ("google", r"googlebot|google-inspectiontool|google-extended|adsbot-google|googleother"),
    ("bing", r"bingbot|bingpreview|msnbot"),
    ("baidu", r"baiduspider"),
    ("yandex", r"yandex"),
    ("duckduckgo", r"duckduckbot|duckassistbot"),
    ("sogou", r"sogou"),
    ("360", r"360spider|haosouspider"),
    ("bytedance", r"bytespider"),
    ("petal", r"petalbot"),
    ("apple", r"applebot"),
    ("openai", r"gptbot|chatgpt-user|oai-searchbot"),
    ("anthropic", r"claudebot|claude-user|claude-searchbot|anthropic-ai"),
    ("perplexity", r"perplexity"),
    ("commoncrawl", r"ccbot"),
    ("amazon", r"amazonbot"),
    ("curl", r"^curl/|\bcurl/"),
    ("wget", r"wget/"),
    ("python", r"python-requests|python-urllib|python-httpx|aiohttp|httpx/|scrapy"),
    ("go", r"go-http-client"),
    ("java", r"okhttp|^java/|apache-httpclient"),
    ("node", r"node-fetch|axios/|undici|got \("),
    ("ruby", r"^ruby|faraday"),
    ("php", r"guzzlehttp|^php/"),
    ("perl", r"libwww-perl"),
    ("headless", r"headlesschrome|phantomjs"),
    ("preview", r"embedly|iframely|redditbot|pinterest|vkshare|viber|linepreview|snapchat"),
    ("crawler", r"bot\b|bot/|crawler|spider|preview|fetcher|scraper|monitor"),
)
_BOT_RE = re.compile("|".join(f"(?P<b{i}>{p})" for i, (_, p) in enumerate(_BOTS)), re.IGNORECASE)
_cache: dict[str, str | None] = {}
_CACHE_LIMIT = 10_000


def _classify(user_agent: str) -> str | None:
    if not user_agent.strip():
        return "empty"
    if _READERS.search(user_agent):
        return None
    match = _BOT_RE.search(user_agent)
    if match is None or match.lastgroup is None:
        return None
    return _BOTS[int(match.lastgroup[1:])][0]


def bot_name(user_agent: str) -> str | None:
    """The bot's name for a user agent, or None for a reader."""
    try:
        return _cache[user_agent]
    except KeyError:
        pass
    name = _classify(user_agent)
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[user_agent] = name
    return name
