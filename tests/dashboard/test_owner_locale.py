"""The owner's locale and time zone: stored on the account (migration 0012_owner, SQLite and
PostgreSQL), set with ``storyloop user add/set`` and on the dashboard's settings form (CSRF),
and used for the dashboard's labels, money, dates and times."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import inspect, select

from publisher import db, ledger
from publisher.web.schema import accounts
from tests.dashboard import expect, seed
from tests.dashboard.conftest import Seeded
from tests.dashboard.test_dashboard_browser import SHOTS, Page, browser  # noqa: F401
from tests.tracking.trackkit import Site
from tests.web.shopkit import PASSWORD, open_shop, storyloop

SINCE, UNTIL = seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=seed.DAYS - 1)
QUERY = f"since={SINCE}&until={UNTIL}"


def _space(text: str) -> str:
    return re.sub(r"[\s\u202f\xa0]+", " ", text)


def test_migration_0012_adds_locale_and_time_zone_and_goes_back(
    tmp_path: Path, db_url: str
) -> None:
    engine = db.connect(db_url)
    try:
        db.upgrade(engine, "0007_customers")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO accounts (name, role, password_hash, failed_logins, "
                "session_version, created_at) VALUES ('lin', 'owner', 'x', 0, 1, "
                "'2026-03-01 00:00:00+00')"
            )
        assert "locale" not in {c["name"] for c in inspect(engine).get_columns("accounts")}
        db.upgrade(engine, "0012_owner")
        columns = {c["name"]: c for c in inspect(engine).get_columns("accounts")}
        assert columns["locale"]["nullable"] and columns["timezone"]["nullable"]
        with engine.begin() as conn:
            row = conn.execute(select(accounts).where(accounts.c.name == "lin")).one()
            assert (row.locale, row.timezone) == (None, None)  # existing accounts: defaults
            conn.execute(accounts.update().values(locale="de_CH", timezone="Europe/Zurich"))
        command.downgrade(db.alembic_config(engine), "0007_customers")
        assert "timezone" not in {c["name"] for c in inspect(engine).get_columns("accounts")}
        with engine.connect() as conn:  # the account itself survives the way back
            assert conn.exec_driver_sql("SELECT name FROM accounts").scalars().all() == ["lin"]
        db.upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Site]:
    site = open_shop(tmp_path / "site", f"sqlite:///{tmp_path / 'site' / 'var' / 'sl.db'}")
    yield site
    site.engine.dispose()


def _stored(site: Site) -> dict[str, tuple[str | None, str | None]]:
    with site.engine.connect() as conn:
        rows = conn.execute(select(accounts.c.name, accounts.c.locale, accounts.c.timezone))
        return {name: (locale, zone) for name, locale, zone in rows}


def test_user_add_and_user_set_keep_the_owner_s_locale(shop: Site) -> None:
    added = storyloop(
        shop, "user", "add", "lin", "--role", "owner", "--locale", "de-CH",
        "--timezone", "Europe/Zurich", stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "reads de_CH Europe/Zurich" in added.stdout
    assert _stored(shop) == {"lin": ("de_CH", "Europe/Zurich")}
    listed = storyloop(shop, "user", "list").stdout.splitlines()
    assert listed == ["lin\towner\t-\tde_CH\tEurope/Zurich"]

    changed = storyloop(shop, "user", "set", "lin", "--locale", "zh_TW")
    assert changed.returncode == 0, changed.stderr
    assert _stored(shop) == {"lin": ("zh_Hant_TW", "Europe/Zurich")}
    back = storyloop(shop, "user", "set", "lin", "--timezone", "")
    assert back.returncode == 0 and "times in the site's (UTC)" in back.stdout, back.stdout
    assert _stored(shop) == {"lin": ("zh_Hant_TW", None)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "ana", "--role", "owner", "--locale", "fr_FR"], "--locale 'fr_FR': expected"),
        (["add", "ana", "--role", "owner", "--timezone", "Mars/Base"], "--timezone 'Mars/Base'"),
        (["set", "lin", "--locale", "klingon"], "--locale 'klingon': expected"),
        (["set", "lin", "--timezone", "Berlin"], "--timezone 'Berlin': expected a time zone"),
        (["set", "lin"], "give --locale, --timezone or both"),
        (["set", "ghost", "--locale", "de_DE"], "no account named 'ghost'"),
    ],
)
def test_a_bad_locale_or_zone_is_one_line_and_changes_nothing(
    shop: Site, args: list[str], message: str
) -> None:
    first = storyloop(shop, "user", "add", "lin", "--role", "owner", stdin=f"{PASSWORD}\n" * 2)
    assert first.returncode == 0, first.stderr
    done = storyloop(shop, "user", *args, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.returncode == 1, done.stdout
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert _stored(shop) == {"lin": (None, None)}


# --------------------------------------------------------------------------- in the browser


def _first_sent(seeded: Seeded) -> Any:
    sent = [d for d in seeded.history.deliveries if d.state == ledger.SENT]
    return min(sent, key=lambda d: (d.at, d.channel, d.id))


@pytest.mark.browser
def test_the_settings_form_changes_how_the_dashboard_writes_figures(
    served: Seeded,
    browser: Any,  # noqa: F811
) -> None:
    tab = Page(browser, served.site.port, "phone")
    tab.login("owner")
    tab.open(f"/dashboard?{QUERY}&lang=en")
    first = _first_sent(served)
    assert tab.page.locator(f"#d-{first.id} th").inner_text() == first.at.astimezone(
        ZoneInfo(seed.ZONE)
    ).strftime("%H:%M")
    assert "2 Mar 2026" in tab.page.locator(".period").inner_text()  # en_GB by default

    tab.page.click("a.settings-link")
    assert tab.page.url.endswith("/dashboard/settings")
    tab.page.select_option("#s-locale", "en_US")
    tab.page.fill("#s-timezone", "Europe/Berlin")
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / "phone-settings.png"), full_page=True)
    tab.page.click("form.settings button[type=submit]")
    tab.page.wait_for_load_state()
    assert "Saved" in tab.page.locator(".notice").inner_text()
    with served.site.engine.connect() as conn:
        stored = conn.execute(
            select(accounts.c.locale, accounts.c.timezone).where(accounts.c.name == "owner")
        ).one()
    assert tuple(stored) == ("en_US", "Europe/Berlin")

    tab.open(f"/dashboard?{QUERY}")
    period = _space(tab.page.locator(".period").inner_text())
    assert "Mar 2, 2026 to Mar 15, 2026 (days in Asia/Shanghai), times in Europe/Berlin" in period
    berlin = first.at.astimezone(ZoneInfo("Europe/Berlin"))
    shown = _space(tab.page.locator(f"#d-{first.id} th").inner_text())
    assert shown == berlin.strftime("%-I:%M %p")  # en_US: 12-hour clock, the owner's zone
    want = expect.figures(served.history, since=SINCE, until=UNTIL)
    assert f"€{want.revenue['EUR'] / 100:,.2f}" in tab.cells("funnel", "Revenue")[1]

    # a German locale turns the labels German too, with Swiss money
    tab.open("/dashboard/settings")
    tab.page.select_option("#s-locale", "de_CH")
    tab.page.click("form.settings button[type=submit]")
    tab.page.wait_for_load_state()
    tab.open(f"/dashboard?{QUERY}")
    assert tab.page.locator("h1").inner_text() == "Übersicht"
    swiss = f"CN¥ {want.revenue['CNY'] / 100:,.2f}".replace(",", "'")
    assert swiss in _space(tab.cells("funnel", "Umsatz")[1])
    assert tab.errors == []


@pytest.mark.browser
def test_the_settings_form_refuses_bad_input_and_forged_posts(
    served: Seeded,
    browser: Any,  # noqa: F811
) -> None:
    tab = Page(browser, served.site.port, "desktop")
    tab.login("owner")
    tab.open("/dashboard/settings?lang=en")
    tab.page.fill("#s-timezone", "Mars/Olympus")
    tab.page.click("form.settings button[type=submit]")
    tab.page.wait_for_load_state()
    assert "There is no time zone “Mars/Olympus”" in tab.page.locator("[role=alert]").inner_text()
    assert tab.page.locator("#s-timezone").get_attribute("aria-invalid") == "true"
    # the refusal itself answers 400 (Chromium logs that status); nothing else may go wrong
    tab.errors = [e for e in tab.errors if not e.startswith("400:") and "status of 400" not in e]
    forged = tab.context.request.post(
        f"{tab.base}/dashboard/settings", form={"csrf": "forged", "locale": "de_DE"}
    )
    assert forged.status == 403
    with served.site.engine.connect() as conn:
        stored = conn.execute(
            select(accounts.c.locale, accounts.c.timezone).where(accounts.c.name == "owner")
        ).one()
    assert tuple(stored) == (None, None)
    assert tab.errors == []
