"""``storyloop init DIR``: a small new site that builds and runs as it is.

Settings with the engine's ``STORYLOOP`` block written out but commented, one story, one
testimonial and an About page, in English, Chinese or German; the theme is the one installed
with Storyloop (``theme_path()``), or a copy in ``themes/storyloop`` to change.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from publisher import theme_path
from publisher.errors import StoryloopError

SETTINGS = '''"""Settings for {name}: Pelican's, and the Storyloop engine's under STORYLOOP.

Build with `storyloop build` (or plain `pelican`), check with `storyloop check`, publish with
`storyloop run`. docs/ADOPTING.md in the Storyloop repository explains every step.
"""

{theme_import}
SITENAME = {name!r}
SITESUBTITLE = {subtitle!r}
SITEURL = "http://127.0.0.1:8000"  # the public address in production (posts link to it)
TIMEZONE = "UTC"
DEFAULT_LANG = {lang!r}
DEFAULT_DATE_FORMAT = "%Y-%m-%d"

PATH = "content"
OUTPUT_PATH = "output"
THEME = {theme}
PLUGINS = ["publisher.pelican_plugin"]
PAGE_PATHS = ["pages"]
ARTICLE_URL = "{{category}}/{{slug}}.html"
ARTICLE_SAVE_AS = "{{category}}/{{slug}}.html"
CATEGORY_URL = "{{slug}}/"
CATEGORY_SAVE_AS = "{{slug}}/index.html"
DIRECT_TEMPLATES = ["index", "categories", "404"]
FEED_DOMAIN = SITEURL
FEED_ALL_ATOM = "feeds/all.atom.xml"
CATEGORY_FEED_ATOM = "feeds/{{slug}}.atom.xml"
DEFAULT_PAGINATION = 12

# The engine. Nothing is posted anywhere until a channel is configured here and a story names
# it in `Channels:` (or a rule below picks it). Without credentials a channel writes what it
# would post to var/outbox/<channel>/. Secrets only by reference: {{"env": "VARIABLE"}}.
# STORYLOOP = {{
#     "timezone": TIMEZONE,
#     "tracking": {{"base_url": "http://127.0.0.1:8000"}},
#     "channels": {{
#         "mastodon": {{
#             "instance": "https://mastodon.social",
#             "token": {{"env": "STORYLOOP_MASTODON_TOKEN"}},
#             "window": "08:00-22:00",
#         }},
#         "email": {{"host": "127.0.0.1", "port": 1025, "sender": "news@example.com",
#                    "subscribers": "content/subscribers.csv"}},
#     }},
#     # which posts are testimonials (also any post with a Customer: field)
#     "testimonial_categories": ["testimonials"],
#     # where a post that names no Channels goes, by category; else "default_channels"
#     "category_channels": {{}},
#     "default_channels": [],
#     # your own header fields, so `storyloop check` does not call them unknown
#     "fields": [],
# }}
'''

TEXTS = {
    "en": {
        "subtitle": "Stories from our work, and what our customers say",
        "story_title": "How we started",
        "story_summary": "The first story on this site: who we are and what we make.",
        "story_body": "Write your story here, in Markdown.\n\n"
        "## A heading\n\nParagraphs, **bold**, [links](https://example.com), tables:\n\n"
        "| What | When |\n|---|---|\n| First day | today |\n",
        "review_title": "Just what we hoped for",
        "review_body": "The customer's own words, published with their written consent.",
        "customer": "A. Customer",
        "about_title": "About us",
        "about_body": "Who we are, where to find us, when we are open.",
        "stories": "Stories",
        "testimonials": "Testimonials",
    },
    "zh": {
        "subtitle": "我们的故事，和客户的评价",
        "story_title": "我们是怎样开始的",
        "story_summary": "本站的第一篇故事：我们是谁，我们做什么。",
        "story_body": "在这里用 Markdown 写你的故事。\n\n## 小标题\n\n段落、**加粗**、"
        "[链接](https://example.com)、表格：\n\n| 事项 | 时间 |\n|---|---|\n| 第一天 | 今天 |\n",
        "review_title": "正是我们想要的",
        "review_body": "客户本人写下的话，经书面同意后发布。",
        "customer": "王女士",
        "about_title": "关于我们",
        "about_body": "我们是谁、在哪里、营业时间。",
        "stories": "故事",
        "testimonials": "客户评价",
    },
    "de": {
        "subtitle": "Geschichten aus unserer Arbeit, und was unsere Kunden sagen",
        "story_title": "Wie alles anfing",
        "story_summary": "Die erste Geschichte dieser Seite: wer wir sind und was wir machen.",
        "story_body": "Schreiben Sie Ihre Geschichte hier, in Markdown.\n\n## Eine Überschrift\n\n"
        "Absätze, **fett**, [Links](https://example.com), Tabellen:\n\n"
        "| Was | Wann |\n|---|---|\n| Erster Tag | heute |\n",
        "review_title": "Genau, was wir wollten",
        "review_body": "Die eigenen Worte der Kundin, mit ihrer schriftlichen Zustimmung.",
        "customer": "Frau K.",
        "about_title": "Über uns",
        "about_body": "Wer wir sind, wo Sie uns finden, wann wir geöffnet haben.",
        "stories": "Geschichten",
        "testimonials": "Kundenstimmen",
    },
}


def write_site(directory: Path, *, name: str, lang: str, copy_theme: bool = False) -> list[Path]:
    """Write the new site into ``directory`` (new or empty) and return the files written."""
    if lang not in TEXTS:
        raise StoryloopError(f"no starter texts in {lang!r}", hint="use one of: en, zh, de")
    if directory.exists() and any(directory.iterdir()):
        raise StoryloopError(f"{directory}: not empty", hint="name a new or empty folder")
    t = TEXTS[lang]
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    if copy_theme:
        theme, theme_import = '"themes/storyloop"', ""
        shutil.copytree(theme_path(), directory / "themes" / "storyloop")
    else:
        theme, theme_import = "theme_path()", "from publisher import theme_path\n"
    files = {
        "pelicanconf.py": SETTINGS.format(
            name=name, subtitle=t["subtitle"], lang=lang, theme=theme, theme_import=theme_import
        )
        + f"CATEGORY_LABELS = {{'stories': {t['stories']!r}, "
        f"'testimonials': {t['testimonials']!r}}}\n",
        "content/stories/how-we-started.md": _post(
            Title=t["story_title"],
            Date=today,
            Slug="how-we-started",
            Lang=lang,
            Category="stories",
            Summary=t["story_summary"],
            body=t["story_body"],
        ),
        "content/testimonials/first-review.md": _post(
            Title=t["review_title"],
            Date=today,
            Slug="first-review",
            Lang=lang,
            Category="testimonials",
            Customer=t["customer"],
            Consent="yes",
            Rating="5",
            body=t["review_body"],
        ),
        "content/pages/about.md": _post(
            Title=t["about_title"], Slug="about", Lang=lang, body=t["about_body"]
        ),
        ".gitignore": "output/\nvar/\ncache/\n__pycache__/\n",
    }
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _post(*, body: str, **fields: str) -> str:
    header = "\n".join(f"{key.replace('_', '-')}: {value}" for key, value in fields.items())
    return f"{header}\n\n{body}\n"
