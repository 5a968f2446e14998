"""``storyloop digest``: a short weekly summary mailed to the owner, with the charts as PNG
images inside the message (``cid:`` parts), sent through the configured SMTP server.

Settings (``STORYLOOP["digest"]``): ``to`` (the owner's address, required), ``sender`` (default:
the email channel's), ``account`` (the owner account whose locale the digest is written in;
default: the only owner account), ``lang`` (when that account has no locale; default: the
site's), ``days`` (default 7), and ``smtp`` (``host``, ``port``, ``username``, ``password`` as
``{"env": NAME}``, ``starttls``; default: the email channel's). ``storyloop run`` sends it every
Monday at 08:00 in the site's time zone.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from publisher import mail as mail_mod
from publisher.dashboard import pages, queries, view
from publisher.dashboard.export import site_language
from publisher.errors import SettingsError, StoryloopError
from publisher.settings import MailSection, Settings, resolve_secrets
from publisher.tracking.report import Filters
from publisher.web import accounts
from publisher.web import i18n as web_i18n
from publisher.web.schema import accounts as accounts_table

log = logging.getLogger(__name__)
CHARTS = ("funnel", "channels", "stores")  # the sections whose chart goes into the mail
WEEKLY = {"day_of_week": "mon", "hour": 8, "minute": 0}


@dataclass(frozen=True)
class DigestSettings:
    to: str
    sender: str
    lang: str
    days: int
    smtp: Mapping[str, Any]
    locale: str | None = None  # the owner's, when their account has one
    timezone: str | None = None


def owner_account(engine: Engine, settings: Settings) -> accounts.Account | None:
    """The account the digest is written for: ``digest.account``, else the only owner."""
    raw = settings.engine.digest
    named = raw.account if raw else None
    with engine.connect() as conn:
        if named:
            found = accounts.get(conn, str(named))
            if found is None or not found.is_owner:
                raise SettingsError(
                    f'{settings.source}: STORYLOOP["digest"]["account"]: {named!r} is not an '
                    "owner account (storyloop user list)"
                )
            return found
        owners = conn.execute(
            select(accounts_table.c.name).where(accounts_table.c.role == "owner").limit(2)
        ).scalars()
        names = list(owners)
        return accounts.get(conn, names[0]) if len(names) == 1 else None


def digest_settings(settings: Settings, engine: Engine | None = None) -> DigestSettings:
    raw = settings.engine.digest
    if raw is None or not raw.to:
        raise SettingsError(
            f'{settings.source}: STORYLOOP["digest"]["to"]: the owner\'s address is needed '
            'for the digest, e.g. "digest": {"to": "owner@example.com"}'
        )
    email = dict(settings.channels.get("email") or {})
    smtp = dict(raw.smtp) if raw.smtp else resolve_secrets(email)
    if not smtp.get("host"):
        raise SettingsError(
            f'{settings.source}: STORYLOOP["digest"]["smtp"]["host"]: no SMTP server '
            "(set one there or configure the email channel)"
        )
    sender = str(raw.sender or email.get("sender") or f"Storyloop <{raw.to}>")
    lang = web_i18n.language_of(raw.lang or "") or site_language(settings)
    owner = owner_account(engine, settings) if engine is not None else None
    locale = owner.locale if owner else None
    lang = web_i18n.language_of(locale) or lang
    zone = owner.timezone if owner else None
    return DigestSettings(raw.to, sender, lang, raw.days, smtp, locale=locale, timezone=zone)


def period_ending(last_day: date, days: int, timezone: str) -> Filters:
    """``days`` days up to ``last_day`` included, in the site's time zone."""
    return Filters(since=last_day - timedelta(days=days - 1), until=last_day, timezone=timezone)


def yesterday(settings: Settings, now: datetime | None = None) -> date:
    """The day before ``now`` (default: this moment) in the site's time zone."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(ZoneInfo(settings.timezone)).date() - timedelta(days=1)


def compose(data: queries.Dashboard, digest: DigestSettings) -> EmailMessage:
    _ = pages.gettext(digest.lang)
    f = data.filters
    fmt = view.Format(view.locale_for(digest.lang, digest.locale), digest.timezone or f.timezone)
    assert f.since and f.until
    span = f"{fmt.day(f.since)} – {fmt.day(f.until)}"
    sections = {s.id: s for s in view.sections(data, _, fmt)}
    figures = view.headline(data, _, fmt)
    verdicts = [(row[0], row[-1]) for row in sections["channels"].rows]
    top = sections["stories"].rows[:5]

    message = EmailMessage()
    message["Subject"] = _("Storyloop: your week, {span}").format(span=span)
    message["From"] = digest.sender
    message["To"] = digest.to
    lines = [_("Your week, {span}").format(span=span), ""]
    lines += [f"{label}: {value}" for label, value in figures]
    lines += ["", _("Channels compared")]
    lines += [f"- {name}: {text}" for name, text in verdicts]
    lines += ["", _("Stories ranked by what they brought into the shop")]
    lines += [f"- {row[0]}: {row[2]} ({row[3]})" for row in top]
    message.set_content("\n".join(lines) + "\n")

    images = {name: make_msgid(domain="storyloop.local")[1:-1] for name in CHARTS}
    parts = [f"<h1>{html.escape(_('Your week, {span}').format(span=span))}</h1><ul>"]
    parts += [f"<li>{html.escape(k)}: <strong>{html.escape(v)}</strong></li>" for k, v in figures]
    parts.append("</ul>")
    for name in CHARTS:
        chart = sections[name].chart
        if chart is None:
            continue
        parts.append(f"<h2>{html.escape(sections[name].title)}</h2>")
        parts.append(f'<img src="cid:{images[name]}" alt="{html.escape(chart.title)}" width="640">')
        if name == "channels":
            parts.append("<ul>")
            parts += [
                f"<li><strong>{html.escape(n)}</strong>: {html.escape(t)}</li>" for n, t in verdicts
            ]
            parts.append("</ul>")
    body = f'<!doctype html><html lang="{digest.lang}"><body>{"".join(parts)}</body></html>'
    message.add_alternative(body, subtype="html")
    related = message.get_body(preferencelist=("html",))
    assert isinstance(related, EmailMessage)
    for name in CHARTS:
        chart = sections[name].chart
        if chart is not None:
            related.add_related(
                chart.png(640),
                maintype="image",
                subtype="png",
                cid=f"<{images[name]}>",
                filename=f"{name}.png",
            )
    return message


def send(message: EmailMessage, smtp: Mapping[str, Any]) -> None:
    mail_mod.send(message, smtp, what="digest", error=StoryloopError)


def send_digest(
    engine: Engine,
    settings: Settings,
    *,
    to: str | None = None,
    days: int | None = None,
    until: date | None = None,
) -> EmailMessage:
    """Send the digest of the ``days`` days up to ``until`` (default: yesterday)."""
    digest = digest_settings(settings, engine) if to is None else _with_to(settings, to, engine)
    if days is not None:
        digest = replace(digest, days=days)
    last = until or yesterday(settings)
    data = queries.load(engine, period_ending(last, digest.days, settings.timezone))
    message = compose(data, digest)
    send(message, digest.smtp)
    log.info("digest sent to %s", digest.to)
    return message


def _with_to(settings: Settings, to: str, engine: Engine) -> DigestSettings:
    digest = replace(settings.engine.digest or MailSection(), to=to)
    return digest_settings(
        replace(settings, engine=replace(settings.engine, digest=digest)), engine
    )


def weekly_job(
    engine: Engine, settings: Settings, clock: Callable[[], datetime] | None = None
) -> None:
    """What ``storyloop run`` calls every Monday (with the engine's clock): the week up to
    yesterday. Errors are logged, the engine goes on."""
    try:
        send_digest(engine, settings, until=yesterday(settings, clock() if clock else None))
    except StoryloopError as exc:
        log.warning("weekly digest not sent: %s", exc)
