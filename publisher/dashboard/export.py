"""``storyloop report --format html``: the dashboard as one file that opens anywhere, offline.

Everything is inside the file: styles, and the charts as inline SVG. There is no script and no
request to anything, so it can be mailed, archived or opened from a USB stick.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup
from sqlalchemy import Engine

from publisher.dashboard import pages, queries
from publisher.errors import StoryloopError
from publisher.settings import Settings
from publisher.tracking.report import Filters
from publisher.web import i18n as web_i18n


def site_language(settings: Settings) -> str:
    return web_i18n.first_language(str(settings.pelican.get("DEFAULT_LANG") or ""))


def html(engine: Engine, filters: Filters, lang: str) -> str:
    period = queries.with_period(filters, filters.since, filters.until)
    data = queries.load(engine, period)
    env = pages.environment(lang)
    context = pages.context(data, lang, interactive=False)
    context["css"] = Markup(pages.export_css().replace("</", "<\\/"))
    return env.get_template("export.html").render(**context)


def write_html(
    engine: Engine, settings: Settings, filters: Filters, target: Path, *, lang: str | None = None
) -> Path:
    chosen = web_i18n.language_of(lang) if lang else site_language(settings)
    if chosen is None:
        raise StoryloopError(f"--lang {lang!r}: expected one of {', '.join(web_i18n.LANGUAGES)}")
    text = html(engine, filters, chosen)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target
