"""``storyloop run`` schedules the owner's weekly digest: the engine's own scheduler holds a
Monday 08:00 job in the site's zone, and when it fires, the mail reaches a real SMTP server
with the charts inline, written in the owner's locale (money, dates and labels)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from publisher import settings as settings_mod
from publisher.scheduler import Runner, open_database
from tests.dashboard import expect, seed
from tests.dashboard.conftest import Seeded
from tests.dashboard.test_outside_the_browser import Inbox, decoded, smtp_server  # noqa: F401
from tests.web.shopkit import PASSWORD, storyloop, write_manifest

SINCE, UNTIL = seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=seed.DAYS - 1)
ZONE = ZoneInfo(seed.ZONE)
# The engine's clock: the Monday after the seeded fortnight, 08:00 in the site's zone, so the
# job's "week up to yesterday" is the seeded history (``days`` covers all of it).
MONDAY_MORNING = datetime.combine(UNTIL + timedelta(days=1), datetime.min.time(), ZONE).replace(
    hour=8
)


def german_money(minor: int, symbol: str) -> str:
    whole = f"{minor / 100:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{whole}\xa0{symbol}"


@pytest.mark.timeout(180)
def test_storyloop_run_sends_the_weekly_digest_with_charts_in_the_owner_s_locale(
    seeded: Seeded,
    smtp_server: tuple[int, Inbox],  # noqa: F811
) -> None:
    port, inbox = smtp_server
    site = seeded.site
    config = site.settings.source
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\nSTORYLOOP["digest"] = {{"to": "owner@example.com", "days": {seed.DAYS},'
        f' "smtp": {{"host": "127.0.0.1", "port": {port}, "starttls": False}}}}\n'
        'STORYLOOP["metrics_minutes"] = 0\nSTORYLOOP["sweep_seconds"] = 3600\n',
        encoding="utf-8",
    )
    settings = settings_mod.load(config)
    added = storyloop(
        site, "user", "add", "lin", "--role", "owner", "--locale", "de_DE",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    write_manifest(site)  # the engine plans from a manifest: this site has no story to post

    runner = Runner(settings, open_database(settings), clock=lambda: MONDAY_MORNING)
    engine_thread = threading.Thread(target=runner.run, daemon=True)
    engine_thread.start()
    try:
        job = None
        for _ in range(200):
            job = runner.scheduler.get_job("digest") if runner.scheduler.running else None
            if job is not None:
                break
            threading.Event().wait(0.05)
        assert job is not None, "storyloop run scheduled no digest"
        trigger = job.trigger
        assert isinstance(trigger, CronTrigger)
        assert str(trigger.timezone) == seed.ZONE
        fields = {f.name: str(f) for f in trigger.fields}
        assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("mon", "8", "0")
        upcoming = job.next_run_time.astimezone(ZONE)
        assert (upcoming.weekday(), upcoming.hour, upcoming.minute) == (0, 8, 0)
        assert timedelta(0) < upcoming - datetime.now(ZONE) <= timedelta(days=7)
        assert inbox.messages == []  # nothing before its time

        job.modify(next_run_time=datetime.now(ZONE))  # its Monday morning comes: it fires
        assert inbox.arrived.wait(120), "the scheduled digest never arrived"
        after = runner.scheduler.get_job("digest")
        assert after is not None and after.next_run_time.astimezone(ZONE) > datetime.now(ZONE)
    finally:
        runner.request_stop()
        engine_thread.join(30)
        runner.engine.dispose()
    assert not engine_thread.is_alive()

    (message,) = inbox.messages
    assert message["To"] == "owner@example.com"
    subject = str(make_header(decode_header(message["Subject"])))
    assert subject == "Storyloop: Ihre Woche, 02.03.2026 – 15.03.2026"
    html_part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    body = decoded(html_part).decode()
    assert '<html lang="de">' in body
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 3
    for image in images:
        assert f"cid:{image['Content-ID'].strip('<>')}" in body
        data = decoded(image)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    plain = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    text = decoded(plain).decode()
    want = expect.figures(seeded.history, since=SINCE, until=UNTIL)
    assert f"Ladenverkäufe: {want.in_shop}" in text
    assert german_money(want.shop_revenue["CNY"], "CN¥") in text
    assert german_money(want.shop_revenue["EUR"], "€") in text
