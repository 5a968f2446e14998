"""/dashboard in Chromium at phone and desktop size on the seeded history: every section shows
what the seed implies, the filters change it, the calendar's retry changes the ledger, staff get
403, no console errors, and an accessibility check (headings, labels, contrast) passes."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from publisher import ledger
from publisher.dashboard import charts
from tests.dashboard import expect, seed
from tests.dashboard.conftest import Seeded
from tests.web.shopkit import PASSWORD

pytestmark = pytest.mark.browser

SINCE, UNTIL = seed.FIRST_DAY, seed.FIRST_DAY + timedelta(days=seed.DAYS - 1)
QUERY = f"since={SINCE}&until={UNTIL}&lang=en"
VIEWPORTS = {"phone": (390, 844), "desktop": (1366, 900)}
SECTIONS = ("funnel", "over-time", "channels", "stories", "variants", "stores", "calendar")
SHOTS = Path(os.environ.get("STORYLOOP_ARTEFACTS", tempfile.gettempdir())) / "dashboard-shots"


@pytest.fixture(scope="module")
def browser(playwright: Any, chromium_path: str) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=chromium_path)
    try:
        yield chromium
    finally:
        chromium.close()


class Page:
    """A browser tab on the tracker that remembers every console error and failed request."""

    def __init__(self, browser: Any, port: int, viewport: str) -> None:
        width, height = VIEWPORTS[viewport]
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.base = f"http://127.0.0.1:{port}"
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None,
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on(
            "response",
            lambda r: self.errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
        )

    def login(self, name: str) -> None:
        self.page.goto(self.base + "/login")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_load_state("networkidle")
        self.errors.clear()  # the login page is the web layer's; this test is about /dashboard

    def open(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def cells(self, section: str, row: str) -> list[str]:
        """The cells of the row whose header cell is ``row``, in section ``section``."""
        found = (
            self.page.locator(f"#{section} table")
            .first.locator("tbody tr")
            .filter(has=self.page.locator("th", has_text=re.compile(rf"^{re.escape(row)}")))
        )
        return [c.strip() for c in found.first.locator("th, td").all_inner_texts()]

    def rows(self, section: str) -> list[list[str]]:
        """Every row of the section's first table, as its cells' text."""
        found = self.page.locator(f"#{section} table").first.locator("tbody tr")
        return [
            [c.strip() for c in found.nth(i).locator("th, td").all_inner_texts()]
            for i in range(found.count())
        ]

    def header_index(self, section: str, header: str) -> int:
        headers = self.page.locator(f"#{section} table").first.locator("thead th")
        return [h.strip() for h in headers.all_inner_texts()].index(header)


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _shoot(tab: Page, viewport: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for section in SECTIONS:
        tab.page.locator(f"#{section}").screenshot(path=str(SHOTS / f"{viewport}-{section}.png"))
    tab.page.screenshot(path=str(SHOTS / f"{viewport}-page.png"), full_page=True)


def test_each_section_shows_what_the_seed_implies(
    served_once: Seeded, browser: Any, viewport: str
) -> None:
    served = served_once
    h = served.history
    tab = Page(browser, served.site.port, viewport)
    tab.login("owner")
    assert tab.open(f"/dashboard?{QUERY}").status == 200
    want = expect.figures(h, since=SINCE, until=UNTIL)
    n = expect.grouped_number

    assert tab.cells("funnel", "Posts sent")[1] == n(want.posts)
    assert tab.cells("funnel", "Clicks")[1] == n(want.clicks)
    assert tab.cells("funnel", "Unique readers")[1] == n(len(want.readers))
    assert tab.cells("funnel", "Link previews and bots")[1] == n(want.bots)
    assert tab.cells("funnel", "Codes claimed")[1] == n(want.codes)
    assert tab.cells("funnel", "In-shop sales via a tracked link")[1] == n(want.linked)
    assert tab.cells("funnel", "In-shop sales with a code only")[1] == n(want.code_only)
    rate = f"{len(want.converted) / len(want.readers):.1%}"
    assert tab.cells("funnel", "Conversion rate")[1] == rate
    cny = f"{want.revenue['CNY'] / 100:,.2f}"
    assert cny in tab.cells("funnel", "Revenue")[1]

    readers_at = tab.header_index("channels", "Readers")
    converted_at = tab.header_index("channels", "Converted")
    for name, mine in expect.by(h, "channel", since=SINCE, until=UNTIL).items():
        if not mine.posts:
            continue
        row = tab.cells("channels", name)
        assert (row[readers_at], row[converted_at]) == (
            n(mine.readers_of_posts),
            n(mine.converted_of_posts),
        )
    assert "no customers" in tab.cells("channels", "telegram")[-1]

    ranked = tab.page.locator("#stories table").first.locator("tbody th").all_inner_texts()
    assert [r.strip() for r in ranked] == expect.story_ranking(h, since=SINCE, until=UNTIL)

    first_day = tab.rows("over-time")[0]
    post_readers: dict[str, set[str]] = {}  # a channel's readers of a day: its posts' added up
    for c in h.clicks:
        if (
            not c.bot
            and expect.local_day(c.at) == SINCE
            and h.delivery(c.delivery).channel == "mastodon"
        ):
            post_readers.setdefault(c.delivery, set()).add(c.reader)
    readers_at = tab.header_index("over-time", "mastodon: readers")
    assert first_day[readers_at] == n(sum(len(r) for r in post_readers.values()))

    kitchen_b = expect.figures(
        h, since=SINCE, until=UNTIL, keep=lambda d: d.story == "kitchen" and d.variant == "B"
    )
    variants = tab.rows("variants")
    assert [r[:4] for r in variants if r[0] == "kitchen"][1] == [
        "kitchen",
        "B",
        str(kitchen_b.readers_of_posts),
        str(kitchen_b.converted_of_posts),
    ]

    linked = sum(int(r[3]) for r in tab.rows("stores") if r[0] == "xiamen-1")
    assert linked == expect.figures(h, since=SINCE, until=UNTIL, store="xiamen-1").linked

    failed = tab.page.locator("#calendar tr.state-failed")
    assert "content rejected" in failed.inner_text()
    held = tab.page.locator("#calendar tr.state-held")
    assert held.count() == 1 and "timeout" in held.inner_text()
    live = tab.page.locator("#calendar a", has_text="live post").first.get_attribute("href")
    assert live and live.startswith("https://")

    _shoot(tab, viewport)
    assert tab.errors == []


def test_filters_change_the_figures(served_once: Seeded, browser: Any) -> None:
    served = served_once
    h = served.history
    tab = Page(browser, served.site.port, "desktop")
    tab.login("owner")
    tab.open(f"/dashboard?{QUERY}")
    tab.page.select_option("#f-channel", "telegram")
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_url(re.compile(r"channel=telegram"))
    telegram = expect.figures(h, since=SINCE, until=UNTIL, keep=lambda d: d.channel == "telegram")
    assert tab.cells("funnel", "Unique readers")[1] == expect.grouped_number(len(telegram.readers))
    assert tab.cells("funnel", "In-shop sales via a tracked link")[1] == "0"

    tab.page.select_option("#f-channel", "")
    tab.page.fill("#f-since", str(SINCE))
    tab.page.fill("#f-until", str(SINCE))
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_url(re.compile(rf"until={SINCE}"))
    first_day = expect.figures(h, since=SINCE, until=SINCE)
    assert tab.cells("funnel", "Unique readers")[1] == expect.grouped_number(len(first_day.readers))
    assert tab.errors == []


def test_retry_from_the_calendar_changes_the_ledger(served: Seeded, browser: Any) -> None:
    failed = next(d for d in served.history.deliveries if d.state == ledger.FAILED)
    tab = Page(browser, served.site.port, "phone")
    tab.login("owner")
    tab.open(f"/dashboard?{QUERY}")
    tab.page.locator(f"#d-{failed.id} form[action$='/retry'] button").click()
    tab.page.wait_for_load_state()
    assert "will be tried again" in tab.page.locator(".notice").inner_text()
    with served.site.engine.connect() as conn:
        row = ledger.get(conn, failed.id)
        assert row is not None and row.state == ledger.PLANNED
        assert ledger.events(conn, failed.id)[-1].detail == "retry by hand"
    # the same button again: the ledger refuses (it is planned now), and says so
    assert tab.page.locator(f"#d-{failed.id} form[action$='/retry']").count() == 0
    held = next(d for d in served.history.deliveries if d.state == ledger.UNKNOWN)
    tab.page.fill(f"#url-{held.id}", "https://telegram.example/posts/found")
    tab.page.locator(f"#d-{held.id} button[value=sent]").click()
    tab.page.wait_for_load_state()
    with served.site.engine.connect() as conn:
        row = ledger.get(conn, held.id)
        assert row is not None and (row.state, row.url) == (
            ledger.SENT,
            "https://telegram.example/posts/found",
        )
    assert tab.errors == []


def test_a_form_without_its_csrf_token_changes_nothing(served_once: Seeded, browser: Any) -> None:
    served = served_once
    failed = next(d for d in served.history.deliveries if d.state == ledger.FAILED)
    tab = Page(browser, served.site.port, "desktop")
    tab.login("owner")
    answer = tab.context.request.post(
        f"{tab.base}/dashboard/deliveries/{failed.id}/retry", form={"csrf": "forged"}
    )
    assert answer.status == 403
    with served.site.engine.connect() as conn:
        row = ledger.get(conn, failed.id)
        assert row is not None and row.state == ledger.FAILED


def test_staff_get_403_and_strangers_the_login_page(served_once: Seeded, browser: Any) -> None:
    served = served_once
    stranger = Page(browser, served.site.port, "phone")
    assert stranger.open("/dashboard").url.endswith("/login?next=/dashboard")
    staff = Page(browser, served.site.port, "phone")
    staff.login("till")
    assert staff.open("/dashboard").status == 403
    failed = next(d for d in served.history.deliveries if d.state == ledger.FAILED)
    staff.open("/account")  # a page staff may open, for a valid CSRF token of their session
    token = staff.page.locator("input[name=csrf]").first.get_attribute("value")
    answer = staff.context.request.post(
        f"{staff.base}/dashboard/deliveries/{failed.id}/retry", form={"csrf": token or ""}
    )
    assert answer.status == 403
    with served.site.engine.connect() as conn:
        assert ledger.get(conn, failed.id).state == ledger.FAILED  # type: ignore[union-attr]


# --------------------------------------------------------------------------- accessibility

CONTRAST_JS = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a >= 0.99) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!el || seen.has(el) || !walker.currentNode.textContent.trim()) continue;
    seen.add(el);
    if (el.closest('svg') || el.closest('.visually-hidden') || el.closest('.skip')) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    const fg = parse(style.color), bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < need) bad.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)}: ${text}`);
  }
  return bad;
}
"""

LABELS_JS = """
() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((el) => !(el.id && document.querySelector(`label[for="${el.id}"]`)) &&
                  !el.getAttribute('aria-label') && !el.closest('label'))
  .map((el) => el.outerHTML.slice(0, 80))
"""


def _relative_luminance(colour: str) -> float:
    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_chart_palette_keeps_3_to_1_against_the_chart_background() -> None:
    ratios = {c: contrast(c, charts.BACKGROUND) for c in charts.PALETTE}
    assert min(ratios.values()) >= 3.0, ratios
    assert len(set(charts.PALETTE)) == len(charts.PALETTE)


def test_headings_labels_and_contrast(served_once: Seeded, browser: Any, viewport: str) -> None:
    served = served_once
    tab = Page(browser, served.site.port, viewport)
    tab.login("owner")
    tab.open(f"/dashboard?{QUERY}")
    levels = [
        int(tag[1])
        for tag in tab.page.eval_on_selector_all("h1, h2, h3, h4", "els => els.map(e => e.tagName)")
    ]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels
    assert tab.page.evaluate(LABELS_JS) == []
    assert tab.page.evaluate(CONTRAST_JS) == []
    snapshot = tab.page.accessibility.snapshot() if hasattr(tab.page, "accessibility") else None
    if snapshot is not None:
        names = {n.get("name") for n in snapshot.get("children", [])}
        assert "Dashboard" in names
    images = tab.page.locator("svg[role=img]")
    assert images.count() >= 6
    assert all(images.nth(i).get_attribute("aria-label") for i in range(images.count()))
    tab.page.keyboard.press("Tab")
    focused = tab.page.evaluate("document.activeElement.textContent")
    assert "Skip" in focused


def test_the_page_reads_in_chinese_and_german(served_once: Seeded, browser: Any) -> None:
    served = served_once
    tab = Page(browser, served.site.port, "desktop")
    tab.login("owner")
    tab.open(f"/dashboard?since={SINCE}&until={UNTIL}&lang=de")
    assert tab.page.locator("h1").inner_text() == "Übersicht"
    revenue = tab.cells("funnel", "Umsatz")[1]
    assert "€" in revenue and "," in revenue  # German money: 9.138,00 €
    tab.open(f"/dashboard?since={SINCE}&until={UNTIL}&lang=zh")
    assert tab.page.locator("h1").inner_text() == "数据看板"
    assert "2026年3月2日" in tab.page.locator(".period").inner_text()
    assert tab.errors == []


def test_print_hides_the_controls(served_once: Seeded, browser: Any) -> None:
    served = served_once
    tab = Page(browser, served.site.port, "desktop")
    tab.login("owner")
    tab.open(f"/dashboard?{QUERY}")
    tab.page.emulate_media(media="print")
    assert not tab.page.locator("form.filters").is_visible()
    assert not tab.page.locator("#calendar .actions").first.is_visible()
    assert tab.page.locator("#funnel table").is_visible()
    pdf = tab.page.pdf(format="A4")
    assert pdf[:4] == b"%PDF"
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "dashboard-print.pdf").write_bytes(pdf)


def test_without_javascript_the_page_and_its_forms_still_work(
    served_once: Seeded, browser: Any
) -> None:
    served = served_once
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    base = f"http://127.0.0.1:{served.site.port}"
    page.goto(base + "/login")
    page.fill("input[name=name]", "owner")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.goto(f"{base}/dashboard?{QUERY}")
    page.select_option("#f-channel", "email")
    page.click("form.filters button[type=submit]")
    assert "channel=email" in page.url
    assert page.locator("#channels tbody th").all_inner_texts() == ["email"]
    shutil.rmtree(SHOTS / "nojs", ignore_errors=True)


FIT_JS = """
() => {
  const out = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    out.push(`page ${document.documentElement.scrollWidth}px wide in ${window.innerWidth}px`);
  for (const wrap of document.querySelectorAll('.table-wrap')) {  // no column hidden off-side
    if (wrap.scrollWidth > wrap.clientWidth + 1)
      out.push(`${wrap.closest('section')?.id}: ${wrap.scrollWidth}px in ${wrap.clientWidth}px`);
  }
  for (const cell of document.querySelectorAll('td.num, .headline dd')) {
    if (cell.offsetParent === null) continue;
    if (cell.scrollWidth > cell.clientWidth + 1) out.push(`cut: ${cell.textContent.trim()}`);
  }
  for (const section of document.querySelectorAll('section.section')) {
    const drawn = section.querySelectorAll('svg[role=img]').length;
    if (drawn && !section.querySelector('table')) out.push(`${section.id}: a chart, no table`);
  }
  return out;
}
"""


@pytest.mark.parametrize("lang", ["zh", "en", "de"])
def test_every_section_fits_in_each_language_at_both_sizes(
    served_once: Seeded, browser: Any, viewport: str, lang: str
) -> None:
    tab = Page(browser, served_once.site.port, viewport)
    tab.login("owner")
    assert tab.open(f"/dashboard?since={SINCE}&until={UNTIL}&lang={lang}").status == 200
    assert tab.page.evaluate(FIT_JS) == []
    assert tab.page.evaluate(CONTRAST_JS) == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    for section in SECTIONS:
        tab.page.locator(f"#{section}").screenshot(
            path=str(SHOTS / f"{lang}-{viewport}-{section}.png")
        )
    tab.page.screenshot(path=str(SHOTS / f"{lang}-{viewport}-page.png"), full_page=True)
    assert tab.errors == []
