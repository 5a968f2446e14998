"""The report: exactly the numbers that went in, grouped as asked, in a stable JSON form."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from typing import Any

import pytest

from channels.base import Links, Metrics
from publisher.tracking import prepare_links, record_metrics, report
from publisher.tracking.conversions import parse_redemption, record_online, record_redemption
from publisher.tracking.journal import Click, Journal, journal_dir
from tests.tracking.trackkit import Site, add_delivery, ingest_now, make_story, run_storyloop


def _links(site: Site, delivery_id: str, channel: str, variant: str | None = None) -> Links:
    with site.engine.begin() as conn:
        return prepare_links(
            conn,
            site.settings,
            delivery_id=delivery_id,
            story=make_story(),
            channel=channel,
            variant=variant,
        )


def _clicks(site: Site, code: str, readers: list[str], bots: int = 0) -> list[str]:
    journal = Journal(journal_dir(site.settings.var_dir))
    ids = []
    for reader in readers:
        click_id = journal.new_click_id(code)
        journal.append(Click(click_id, code, time.time(), "reader", None, reader, None))
        ids.append(click_id)
    for _ in range(bots):
        click_id = journal.new_click_id(code)
        journal.append(Click(click_id, code, time.time(), "bot", "mastodon", None, None))
    journal.close()
    return ids


@pytest.fixture
def funnel(any_site: Site) -> Site:
    site = any_site
    add_delivery(site, "d1", "mastodon", "A")
    add_delivery(site, "d2", "telegram")
    add_delivery(site, "d3", "email", state="planned")
    mastodon, telegram = _links(site, "d1", "mastodon", "A"), _links(site, "d2", "telegram")
    code = mastodon.get(make_story().url).rsplit("/", 1)[1]
    ids = _clicks(site, code, ["a1" * 16, "a1" * 16, "b2" * 16], bots=2)
    _clicks(site, telegram.get(make_story().url).rsplit("/", 1)[1], ["c3" * 16, "d4" * 16])
    ingest_now(site)
    with site.engine.begin() as conn:
        sale = {"click_id": ids[0], "kind": "sale", "value": "299.50", "order_id": "o-1"}
        record_online(conn, sale, "CNY")
        record_online(conn, {"click_id": ids[2], "kind": "lead", "order_id": "l-1"}, "CNY")
        assert mastodon.offer_code
        redemption = parse_redemption({"code": mastodon.offer_code, "value": "100"}, "CNY", {})
        record_redemption(conn, redemption, "cli", "once:1")
    record_metrics(site.engine, "d1", Metrics(likes=5, reposts=2, replies=1, views=None))
    return site


def _row(data: dict[str, Any], **key: str | None) -> dict[str, Any]:
    found: dict[str, Any]
    (found,) = [r for r in data["rows"] if all(r[k] == v for k, v in key.items())]
    return found


def test_report_shows_exactly_the_recorded_funnel(funnel: Site) -> None:
    data = report.as_json(report.build(funnel.engine, ("story", "channel")))
    mastodon = _row(data, channel="mastodon")
    assert {k: mastodon[k] for k in report.COLUMNS} == {
        "deliveries": 1,
        "clicks": 3,
        "unique_readers": 2,
        "bot_fetches": 2,
        "leads": 1,
        "online_sales": 1,
        "codes_claimed": 0,
        "redemptions_linked": 0,
        "redemptions_code_only": 1,
        "converted_readers": 2,
        "conversion_rate": 1.0,
    }
    # three conversions by two readers: the rate counts the readers, and the redemption made
    # with the code printed in the post is "code only", never part of a rate
    assert (mastodon["conversions"], mastodon["redemptions"]) == (3, 1)
    assert mastodon["revenue"] == {"CNY": "399.50"}
    assert mastodon["engagement"] == {"likes": 5, "reposts": 2, "replies": 1, "views": None}
    assert mastodon["flags"] == []
    telegram = _row(data, channel="telegram")
    assert (telegram["clicks"], telegram["conversions"]) == (2, 0)
    assert telegram["flags"] == ["clicks_without_conversions"]
    assert data["channels_without_conversions"] == ["telegram"]
    assert data["totals"]["unique_readers"] == 4
    assert data["totals"]["deliveries"] == 2


def test_report_groups_by_variant(funnel: Site) -> None:
    data = report.as_json(report.build(funnel.engine, ("variant",)))
    assert _row(data, variant="A")["clicks"] == 3
    assert _row(data, variant=None)["clicks"] == 2
    assert data["by"] == ["variant"]


def test_report_since_a_later_date_is_empty(funnel: Site) -> None:
    data = report.as_json(report.build(funnel.engine, ("channel",), date(2100, 1, 1)))
    assert data["rows"] == []
    assert data["since"] == "2100-01-01"


def test_report_command_prints_json_csv_and_a_table(funnel: Site) -> None:
    done = run_storyloop(funnel, "report", "--by", "channel", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["version"] == 2 and _row(data, channel="mastodon")["online_sales"] == 1
    csv_out = run_storyloop(funnel, "report", "--by", "channel", "--format", "csv").stdout
    assert csv_out.splitlines()[0].startswith("channel,deliveries,clicks,unique_readers")
    table = run_storyloop(funnel, "report").stdout
    assert "mastodon" in table and "clicks but no conversions: telegram" in table


def test_report_rejects_an_unknown_grouping(sqlite_site: Site) -> None:
    done = run_storyloop(sqlite_site, "report", "--by", "story,colour")
    assert done.returncode == 1 and "--by 'story,colour'" in done.stderr


def test_report_json_matches_its_documented_schema(funnel: Site) -> None:
    data = report.as_json(report.build(funnel.engine, report.DIMENSIONS))
    assert set(data) == {
        "version",
        "generated_at",
        "since",
        "until",
        "timezone",
        "by",
        "rows",
        "totals",
        "channels_without_conversions",
        "brought_by_customers",  # added with referral codes (docs/CUSTOMERS.md)
    }
    assert data["brought_by_customers"] == []  # no referral codes in this history
    figures = {
        *report.COLUMNS,
        "conversions",
        "redemptions",
        "revenue",
        "shop_revenue",
        "engagement",
        "flags",
    }
    for row in data["rows"]:
        assert set(row) == figures | {"story", "channel", "variant", "region", "store"}
    assert set(data["totals"]) == figures


def test_report_since_today_keeps_today_s_activity(funnel: Site) -> None:
    today = datetime.now(UTC).date()
    data = report.as_json(report.build(funnel.engine, ("channel",), today))
    assert _row(data, channel="mastodon")["clicks"] == 3
    assert _row(data, channel="mastodon")["online_sales"] == 1
    assert data["totals"]["unique_readers"] == 4
