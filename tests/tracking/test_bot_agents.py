from __future__ import annotations

import pytest

from publisher.tracking.bots import bot_name

BOTS = {
    "http.rb/5.1.1 (Mastodon/4.2.10; +https://mastodon.social/)": "mastodon",
    "Mastodon/4.3.0 (http.rb/5.2.0; +https://fosstodon.org/) Bot": "mastodon",
    "Pleroma 2.6.2; https://pleroma.example <admin@pleroma.example>": "pleroma",
    "Akkoma 3.13.2; https://akkoma.example <admin@akkoma.example>": "akkoma",
    "Misskey/2024.5.0 (https://misskey.io)": "misskey",
    "SummalyBot/5.1.0": "misskey",
    "TelegramBot (like TwitterBot)": "telegram",
    "Twitterbot/1.0": "x",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)": "facebook",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": "slack",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)": "discord",
    "WhatsApp/2.23.20.0": "whatsapp",
    "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)": "bluesky",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "google",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)": "bing",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)": "baidu",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2)": "openai",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0)": "anthropic",
    "Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com)": "bytedance",
    "curl/8.5.0": "curl",
    "python-requests/2.31.0": "python",
    "Go-http-client/1.1": "go",
    "Wget/1.21.4": "wget",
    "okhttp/4.12.0": "java",
    "": "empty",
}

READERS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI "
    "Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; V2203A) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/108.0 Mobile Safari/537.36 Weibo (vivo-V2203A__weibo__13.11.0__android__android13)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]


@pytest.mark.parametrize(("agent", "name"), BOTS.items())
def test_preview_fetchers_crawlers_and_libraries_are_bots(agent: str, name: str) -> None:
    assert bot_name(agent) == name


@pytest.mark.parametrize("agent", READERS)
def test_browsers_including_wechat_and_weibo_in_app_are_readers(agent: str) -> None:
    assert bot_name(agent) is None
