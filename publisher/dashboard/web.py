"""``/dashboard``: the owner's page, mounted on the web layer (owner accounts only).

Plain GET forms for the filters and plain POST forms (CSRF-checked) for the calendar's retry,
cancel and resolve, which go through the same ledger transitions as ``storyloop retry``,
``cancel`` and ``resolve``. No script is needed for anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency
from markupsafe import Markup
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from publisher import ledger
from publisher.dashboard import charts, pages, queries, view
from publisher.dispatch import utcnow
from publisher.settings import Settings
from publisher.tracking.report import Filters
from publisher.web import accounts
from publisher.web import i18n as web_i18n
from publisher.web.accounts import Account
from publisher.web.pages import language
from publisher.web.security import CSRF_FIELD, checked_form, csrf_token, require_role

PREFIX = "/dashboard"
DIMENSIONS = ("story", "channel", "variant", "region", "store")
ACTIONS = ("retry", "cancel", "resolve")
MESSAGE_KEY = "dashboard_message"
# Offered on the settings form (any other Babel locale of zh, en or de: `storyloop user set`).
LOCALE_CHOICES = (
    "zh_Hans_CN",
    "zh_Hant_TW",
    "zh_Hant_HK",
    "en_GB",
    "en_US",
    "en_AU",
    "en_CA",
    "en_IE",
    "en_SG",
    "de_DE",
    "de_AT",
    "de_CH",
)


def owner_language(request: Request) -> str:
    """?lang= (the switch) first, then the account's locale, then the cookie and the browser."""
    account: Account | None = getattr(request.state, "account", None)
    return (
        web_i18n.language_of(request.query_params.get("lang"))
        or web_i18n.language_of(account.locale if account else None)
        or language(request)
    )


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def filters_from(request: Request, settings: Settings) -> tuple[Filters, list[str]]:
    """The filters a query string asks for; values it cannot use are dropped and named."""
    params = request.query_params
    problems = [n for n in ("since", "until") if params.get(n) and _day(params.get(n)) is None]
    values = {d: (params.get(d) or None) for d in DIMENSIONS}
    chosen = Filters(timezone=settings.timezone, **values)  # type: ignore[arg-type]
    since, until = _day(params.get("since")), _day(params.get("until"))
    if since and until and since > until:
        since, until = until, since
    return queries.with_period(chosen, since, until), problems


@require_role("owner")
async def dashboard_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    engine: Engine = request.app.state.engine
    filters, problems = filters_from(request, settings)
    grain = request.query_params.get("grain", "day")
    data = await run_in_threadpool(queries.load, engine, filters, grain)
    lang = owner_language(request)
    account: Account = request.state.account
    context = pages.context(
        data, lang, interactive=True, locale=account.locale, timezone=account.timezone
    )
    _ = pages.gettext(lang)
    message = request.session.pop(MESSAGE_KEY, None)
    if problems:
        message = {"kind": "warn", "text": _("Dates are written like 2026-03-01.")}
    context["message"] = message
    return _render(request, "dashboard.html", context, lang)


def _render(request: Request, name: str, context: dict[str, Any], lang: str) -> HTMLResponse:
    def csrf_field() -> Markup:
        return Markup('<input type="hidden" name="{}" value="{}">').format(
            CSRF_FIELD, csrf_token(request)
        )

    page = (
        pages.environment(lang)
        .get_template(name)
        .render(
            request=request,
            account=getattr(request.state, "account", None),
            csrf_field=csrf_field,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(page)
    response.headers["cache-control"] = "no-store"
    return response


def _transition(action: str, outcome: str, url: str) -> Callable[..., bool] | None:
    if action == "retry":
        return ledger.retry
    if action == "cancel":
        return ledger.cancel
    if outcome == "resend":
        return ledger.resolve_resend
    if outcome == "sent" and url.startswith(("https://", "http://")):
        return lambda conn, id_, *, now: ledger.resolve_sent(conn, id_, url=url, now=now)
    return None


def act(engine: Engine, delivery: str, action: str, outcome: str, url: str) -> str:
    """Apply one hand-made transition; returns what happened ("done", "refused", ...)."""
    change = _transition(action, outcome, url)
    if change is None:
        return "bad-url"
    with ledger.transaction(engine) as conn:
        if ledger.get(conn, delivery) is None:
            return "missing"
        return "done" if change(conn, delivery, now=utcnow()) else "refused"


@require_role("owner")
async def delivery_action(request: Request) -> Response:
    form = await checked_form(request)
    delivery = str(request.path_params["delivery"])
    action = str(request.path_params["action"])
    if action not in ACTIONS:
        return Response(status_code=404)
    outcome = str(form.get("outcome", ""))
    url = str(form.get("url", "")).strip()
    engine: Engine = request.app.state.engine
    result = await run_in_threadpool(act, engine, delivery, action, outcome, url)
    _ = pages.gettext(owner_language(request))
    done = {
        "retry": _("Delivery {id} will be tried again now."),
        "cancel": _("Delivery {id} is cancelled and will not be sent."),
        "resolve": _("Delivery {id} is settled."),
    }
    texts = {
        "done": done[action].format(id=delivery),
        "refused": _("Delivery {id} is in a state that does not allow this any more.").format(
            id=delivery
        ),
        "missing": _("There is no delivery {id}.").format(id=delivery),
        "bad-url": _("Give the link of the post, starting with https://."),
    }
    kind = "good" if result == "done" else "bad"
    request.session[MESSAGE_KEY] = {"kind": kind, "text": texts[result]}
    back = request.headers.get("referer", "")
    target = PREFIX
    if "?" in back and back.split("?", 1)[0].endswith(PREFIX):
        target = PREFIX + "?" + back.split("?", 1)[1].split("#", 1)[0]
    return RedirectResponse(f"{target}#d-{delivery}", status_code=303)


def _settings_context(
    request: Request, lang: str, locale: str | None, timezone: str | None
) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    choices = list(LOCALE_CHOICES)
    if locale and locale not in choices:
        choices.append(locale)
    written = view.locale_for(lang, locale) if locale else view.LOCALES[lang]
    return {
        "lang": lang,
        "locale_choices": [(c, Locale.parse(c).get_display_name(lang) or c) for c in choices],
        "current_locale": locale or "",
        "current_timezone": timezone or "",
        "site_timezone": settings.timezone,
        "zones": sorted(accounts.time_zones()),
        "example_money": format_currency(Decimal("1234.5"), "EUR", locale=written),
        "example_day": format_date(datetime.now(UTC).date(), "long", locale=written),
    }


@require_role("owner")
async def settings_page(request: Request) -> Response:
    account: Account = request.state.account
    lang = owner_language(request)
    context = _settings_context(request, lang, account.locale, account.timezone)
    return _render(request, "settings.html", context, lang)


@require_role("owner")
async def save_settings(request: Request) -> Response:
    form = await checked_form(request)
    account: Account = request.state.account
    locale, timezone = str(form.get("locale", "")).strip(), str(form.get("timezone", "")).strip()
    lang = owner_language(request)
    _ = pages.gettext(lang)
    problem: tuple[str, str] | None = None
    if timezone and timezone not in accounts.time_zones():
        text = _("There is no time zone “{zone}”: write it like Europe/Berlin or Asia/Shanghai.")
        problem = ("timezone", text.format(zone=timezone))
    if locale:
        try:
            accounts.check_locale(locale)
        except accounts.AccountError:
            problem = ("locale", _("Choose one of the locales in the list."))
    if problem:
        context = _settings_context(request, lang, account.locale, account.timezone)
        context.update(error_field=problem[0], error=problem[1])
        response = _render(request, "settings.html", context, lang)
        response.status_code = 400
        return response
    engine: Engine = request.app.state.engine
    saved = await run_in_threadpool(
        lambda: accounts.set_locale(engine, account.name, locale=locale, timezone=timezone)
    )
    new_lang = web_i18n.language_of(saved.locale) or lang
    _ = pages.gettext(new_lang)
    request.session[MESSAGE_KEY] = {
        "kind": "good",
        "text": _("Saved: figures are now written this way."),
    }
    return RedirectResponse(f"{PREFIX}?lang={new_lang}", status_code=303)


async def charts_css(request: Request) -> Response:
    return Response(
        charts.stylesheet(),
        media_type="text/css",
        headers={"cache-control": "public, max-age=3600"},
    )


def routes() -> list[Route | Mount]:
    return [
        Route(PREFIX, dashboard_page, methods=["GET"]),
        Route(f"{PREFIX}/settings", settings_page, methods=["GET"]),
        Route(f"{PREFIX}/settings", save_settings, methods=["POST"]),
        Route(f"{PREFIX}/charts.css", charts_css, methods=["GET"]),
        Route(
            PREFIX + "/deliveries/{delivery:str}/{action:str}", delivery_action, methods=["POST"]
        ),
        Mount(f"{PREFIX}/static", StaticFiles(directory=pages.STATIC), name="dashboard-static"),
    ]
