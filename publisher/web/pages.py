"""Rendering: one Jinja2 environment per language, with Babel's catalogue installed in it."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from publisher.web import i18n
from publisher.web.security import CSRF_FIELD, csrf_token

TEMPLATES = Path(__file__).with_name("templates")
LANG_COOKIE = "sl_lang"


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["languages"] = i18n.LANGUAGES
    env.filters["lastday"] = lambda until, store=None: last_day(until, store, lang)
    env.filters["localtime"] = lambda when, store=None: local_time(when, store, lang)
    env.filters["dayname"] = lambda day: str(format_date(day, format="long", locale=lang))
    return env


def _zone(store: Any) -> ZoneInfo:
    return ZoneInfo(getattr(store, "timezone", None) or "UTC")


def last_day(until: datetime, store: Any, lang: str) -> str:
    """The last day an offer holds (it ends at ``until``), as the reader's language writes it."""
    day = (until - timedelta(seconds=1)).astimezone(_zone(store))
    return str(format_date(day.date(), format="long", locale=lang))


def local_time(when: datetime, store: Any, lang: str) -> str:
    return str(format_datetime(when.astimezone(_zone(store)), format="short", locale=lang))


def language(request: Request, *preferred: str | None) -> str:
    """?lang= first (the switcher), then the reader's cookie, then ``preferred`` (a story's or a
    store's language), then the browser's Accept-Language."""
    chosen = i18n.language_of(request.query_params.get("lang"))
    if chosen:
        return chosen
    remembered = i18n.language_of(request.cookies.get(LANG_COOKIE))
    if remembered:
        return remembered
    for tag in preferred:
        found = i18n.language_of(tag)
        if found:
            return found
    return i18n.negotiate(request.headers.get("accept-language", ""))


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    lang: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    chosen = lang or language(request)
    template = environment(chosen).get_template(name)

    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="{}" value="{}">').format(
            CSRF_FIELD, csrf_token(request)
        )

    page = template.render(
        request=request,
        lang=chosen,
        account=getattr(request.state, "account", None),
        csrf_field=csrf_field,
        # the language switcher links here: a page answering a POST links to its area's page
        path=request.url.path if request.method == "GET" else "/" + request.url.path.split("/")[1],
        **(context or {}),
    )
    response = HTMLResponse(page, status_code=status)
    response.headers["cache-control"] = "no-store"
    if request.query_params.get("lang") == chosen:
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, samesite="lax")
    return response
