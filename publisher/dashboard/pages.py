"""Rendering the dashboard: one Jinja2 environment per language over the dashboard's templates
and the web layer's (for the shared page frame), and the context every page and file shares."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from publisher.dashboard import charts, i18n, view
from publisher.dashboard.queries import CALENDAR_STATES, Dashboard
from publisher.web.pages import TEMPLATES as WEB_TEMPLATES

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(TEMPLATES), FileSystemLoader(WEB_TEMPLATES)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["languages"] = i18n.LANGUAGES
    return env


def gettext(lang: str) -> view.Gettext:
    return i18n.translations(lang).gettext


def context(
    data: Dashboard,
    lang: str,
    *,
    interactive: bool,
    inline_full: bool = False,
    locale: str | None = None,
    timezone: str | None = None,
) -> dict[str, Any]:
    """Everything the sections template needs. ``locale`` and ``timezone`` are the owner's
    (see :func:`publisher.dashboard.view.locale_for`; the site's zone when unset).
    ``inline_full`` puts each chart's stylesheet in the chart itself (the self-contained
    file); pages link one stylesheet instead."""
    _ = gettext(lang)
    f = data.filters
    fmt = view.Format(view.locale_for(lang, locale), timezone or f.timezone)

    def chart_markup(chart: charts.Chart) -> Markup:
        return Markup(chart.full if inline_full else chart.inline)

    chosen = {d: getattr(f, d) or "" for d in ("story", "channel", "variant", "region", "store")}
    period = ""
    if f.since and f.until and fmt.timezone == f.timezone:
        period = _("{since} to {until}, times in {zone}").format(
            since=fmt.day(f.since), until=fmt.day(f.until), zone=f.timezone
        )
    elif f.since and f.until:
        period = _("{since} to {until} (days in {site_zone}), times in {zone}").format(
            since=fmt.day(f.since), until=fmt.day(f.until), site_zone=f.timezone, zone=fmt.timezone
        )
    generated = _("Figures as of {moment}.").format(moment=fmt.moment(data.generated_at))
    return {
        "lang": lang,
        "sections": view.sections(data, _, fmt),
        "headline": view.headline(data, _, fmt),
        "fmt": fmt,
        "filters": f,
        "chosen": chosen,
        "options": data.options,
        "grain": data.grain,
        "interactive": interactive,
        "chart_markup": chart_markup,
        "time_of": fmt.time,
        "locale": fmt.locale,
        # looked up, not translated again for each of up to 300 calendar rows (twice a row)
        "state_label": {s: view.state_label(s, _) for s in CALENDAR_STATES}.__getitem__,
        "period_text": period,
        "generated_text": generated,
        "dimension_labels": [
            ("story", _("Story")),
            ("channel", _("Channel")),
            ("variant", _("Variant")),
            ("region", _("Region")),
            ("store", _("Store")),
        ],
    }


def export_css() -> str:
    """The styles of the self-contained file: the web layer's, the dashboard's, the charts'."""
    web = (WEB_TEMPLATES.parent / "static" / "web.css").read_text(encoding="utf-8")
    mine = (STATIC / "dashboard.css").read_text(encoding="utf-8")
    return "\n".join((web, mine, charts.stylesheet()))
