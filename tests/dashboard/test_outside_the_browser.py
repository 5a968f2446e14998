"""The same figures outside the browser: the terminal report (sorted, fitted to the terminal,
``--by store``), the self-contained HTML file (opened offline in Chromium) and the digest
(delivered to a real SMTP server with its charts inline)."""

from __future__ import annotations

import email
import json
import subprocess
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from publisher.dashboard import digest
from tests.conftest import free_port
from tests.dashboard import expect, seed
from tests.dashboard.conftest import Seeded
from tests.tracking.trackkit import storyloop_argv, tracker_env

SINCE, UNTIL = seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=seed.DAYS - 1)
PERIOD = ["--since", str(SINCE), "--until", str(UNTIL)]


def storyloop(
    seeded: Seeded, *args: str, columns: int | None = None
) -> subprocess.CompletedProcess[str]:
    env = tracker_env()
    env.pop("COLUMNS", None)
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        storyloop_argv(seeded.site, *args),
        cwd=seeded.site.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_by_store_credits_each_store(seeded: Seeded) -> None:
    done = storyloop(seeded, "report", "--by", "store,channel", "--format", "json", *PERIOD)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["rows"]
    for store in ("xiamen-1", "berlin-1"):
        mine = expect.figures(seeded.history, since=SINCE, until=UNTIL, store=store)
        found = [r for r in rows if r["store"] == store]
        assert sum(r["redemptions_linked"] for r in found) == mine.linked
        assert sum(r["redemptions_code_only"] for r in found) == mine.code_only
        assert all(r["unique_readers"] == 0 and r["conversion_rate"] is None for r in found)
    reach = [r for r in rows if r["store"] is None]  # what belongs to no store: the reach
    assert sum(r["unique_readers"] for r in reach) == (
        expect.figures(seeded.history, since=SINCE, until=UNTIL).readers_of_posts
    )


def test_report_sorts_by_in_shop_sales_then_conversions(seeded: Seeded) -> None:
    done = storyloop(seeded, "report", "--by", "story", "--format", "json", *PERIOD)
    stories = [r["story"] for r in json.loads(done.stdout)["rows"]]
    assert stories == expect.story_ranking(seeded.history, since=SINCE, until=UNTIL)


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_the_table_fits_the_terminal_without_cutting_numbers(seeded: Seeded, columns: int) -> None:
    done = storyloop(seeded, "report", "--by", "story,channel", *PERIOD, columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= columns
    data = json.loads(
        storyloop(seeded, "report", "--by", "story,channel", "--format", "json", *PERIOD).stdout
    )
    total = data["totals"]
    # the most important figures are always there, whole, on the total row
    total_line = next(line for line in lines if "total" in line)
    assert str(total["redemptions"]) in total_line.split()
    assert f"{total['shop_revenue']['CNY']}" in done.stdout.replace("CNY ", "")
    if columns < 200:
        assert "left out for width" in done.stdout


def test_report_rejects_a_bad_date_in_one_line(seeded: Seeded) -> None:
    done = storyloop(seeded, "report", "--until", "15.03.2026")
    assert done.returncode == 1
    assert "--until '15.03.2026': expected a date like 2026-03-01" in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- the HTML file


def test_the_html_export_opens_offline(
    seeded: Seeded, playwright: Any, chromium_path: str, tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    done = storyloop(seeded, "report", "--format", "html", "--out", str(target), *PERIOD)
    assert done.returncode == 0, done.stderr
    asked: list[str] = []
    errors: list[str] = []
    browser = playwright.chromium.launch(executable_path=chromium_path)
    context = browser.new_context(offline=True, viewport={"width": 390, "height": 844})

    def block(route: Any) -> None:
        asked.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", block)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(target.as_uri())
    want = expect.figures(seeded.history, since=SINCE, until=UNTIL)
    readers = page.locator("#funnel tbody tr", has_text="Unique readers").inner_text()
    assert expect.grouped_number(len(want.readers)) in readers
    assert page.locator("svg[role=img]").count() >= 6
    # styled from inside the file: the chart's bars are coloured, the page is not bare
    colour = page.eval_on_selector("#chart-stores .color-0 rect", "e => getComputedStyle(e).fill")
    assert colour == "rgb(0, 114, 178)"
    assert page.locator("form").count() == 0  # a file has nothing to send anywhere
    page.screenshot(path=str(tmp_path / "export-phone.png"), full_page=True)
    browser.close()
    assert [u for u in asked if not u.startswith("file://")] == []
    assert errors == []


# --------------------------------------------------------------------------- the digest


def decoded(part: Message) -> bytes:
    """A MIME part's payload with its transfer encoding undone (a leaf part's is bytes)."""
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes), part.get_content_type()
    return payload


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        self.arrived.set()
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_the_digest_arrives_with_its_charts_inline(
    seeded: Seeded, smtp_server: tuple[int, Inbox]
) -> None:
    port, inbox = smtp_server
    config = seeded.site.settings.source
    config.write_text(
        config.read_text(encoding="utf-8")
        + f'\nSTORYLOOP["digest"] = {{"to": "owner@example.com", "days": {seed.DAYS},'
        f' "smtp": {{"host": "127.0.0.1", "port": {port}, "starttls": False}}}}\n',
        encoding="utf-8",
    )
    done = storyloop(seeded, "digest", "--until", str(UNTIL))
    assert done.returncode == 0, done.stderr
    assert inbox.arrived.wait(10)
    (message,) = inbox.messages
    assert message["To"] == "owner@example.com"
    html_part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 3
    body = decoded(html_part).decode()
    for image in images:
        cid = image["Content-ID"].strip("<>")
        assert f"cid:{cid}" in body
        data = decoded(image)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    plain = decoded(text).decode()
    want = expect.figures(seeded.history, since=SINCE, until=UNTIL)
    assert f"In-shop sales: {want.in_shop}" in plain
    assert "telegram: Brings readers but no customers" in plain


def test_the_digest_without_an_address_says_what_to_set(seeded: Seeded) -> None:
    done = storyloop(seeded, "digest")
    assert done.returncode != 0
    assert 'STORYLOOP["digest"]["to"]' in done.stderr and "Traceback" not in done.stderr


def test_the_weekly_job_is_every_monday_morning_in_the_site_s_zone() -> None:
    assert digest.WEEKLY == {"day_of_week": "mon", "hour": 8, "minute": 0}
    period = digest.period_ending(date(2026, 3, 15), 7, seed.ZONE)
    assert (period.since, period.until) == (date(2026, 3, 9), date(2026, 3, 15))
