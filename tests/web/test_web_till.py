"""The till against a real ``storyloop serve``, on SQLite and on PostgreSQL: what it accepts,
what it refuses (with the sentence the assistant says), and that a sale is counted once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from publisher.model import OfferRules
from publisher.tracking.schema import conversions
from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import (
    Browser,
    add_user,
    notices,
    offer_story,
    open_shop,
    shared_code,
    storyloop,
    write_manifest,
)


@dataclass
class Shop:
    site: Site
    reader: Browser  # one reader: claims a code per story
    mia: Browser  # staff, berlin-1
    lin: Browser  # staff, xiamen-1
    ana: Browser  # owner


YESTERDAY = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    root = tmp_path_factory.mktemp("till") / "site"
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'var' / 'storyloop.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    site = open_shop(root, url)
    write_manifest(
        site,
        offer_story("floor", "berlin"),
        offer_story("tea", "xiamen", lang="zh"),
        offer_story("old", "berlin", offer_rules=OfferRules(until=YESTERDAY)),
        offer_story("twice", "berlin", offer_rules=OfferRules(per_code=2, total=3)),
        offer_story("only-2", "berlin", offer_rules=OfferRules(stores=("berlin-2",))),
    )
    for name, role, store in (
        ("mia", "staff", "berlin-1"),
        ("lin", "staff", "xiamen-1"),
        ("ana", "owner", None),
        ("guesser", "staff", "berlin-1"),
    ):
        add_user(site, name, role, store)
    tracker = Tracker(site).start()
    browsers = [Browser.open(site) for _ in range(4)]
    for browser, name in zip(browsers[1:], ("mia", "lin", "ana"), strict=True):
        assert browser.login(name).status_code == 303
    try:
        yield Shop(site, *browsers)
    finally:
        tracker.kill()
        site.engine.dispose()


def _rows(site: Site, **where: Any) -> list[Any]:
    query = select(conversions)
    for column, value in where.items():
        query = query.where(conversions.c[column] == value)
    with site.engine.connect() as conn:
        return list(conn.execute(query.order_by(conversions.c.id)).mappings())


def test_a_personal_code_is_valid_in_its_region_and_recorded_in_euro(shop: Shop) -> None:
    code = shop.reader.claim("floor")
    page = shop.mia.check(code.lower().replace("-", " "))
    assert notices(page) == [("good", "Gültig hier und jetzt")]
    assert "A free sample for floor" in page.text and "noch nicht" in page.text
    done = shop.mia.redeem(code, "45,50", "R-100")
    assert done.status_code == 200
    assert ("good", "Erfasst: 45,50 € Beleg R-100") in notices(done)
    assert "A free sample for floor" in done.text  # what to hand over
    (row,) = _rows(shop.site, offer_code=code)
    assert (row["store"], row["value_minor"], row["currency"]) == ("berlin-1", 4550, "EUR")
    assert (row["channel"], row["via"], row["code_kind"], row["account"]) == (
        "site",
        "code",
        "personal",
        "mia",
    )


def test_a_code_from_another_region_is_refused_with_where_it_is_valid(shop: Shop) -> None:
    code = shop.reader.claim("tea")
    page = shop.mia.check(code)
    assert notices(page) == [
        (
            "bad",
            "Nicht angenommen Dieses Angebot gilt nicht in dieser Filiale; es gilt in: "
            "松陶家居 厦门思明店.",
        )
    ]
    assert 'action="/till/confirm"' not in page.text


def test_an_expired_offer_is_refused(shop: Shop) -> None:
    code = shop.reader.claim("old")
    page = shop.mia.check(code)
    (kind, text), *_ = notices(page)
    # the last day the offer held, in the store's time zone (berlin-1's), as the till says it
    last_day = (YESTERDAY - timedelta(seconds=1)).astimezone(ZoneInfo("Europe/Berlin"))
    assert kind == "bad" and f"Dieses Angebot endete am {last_day:%Y-%m-%d}" in text
    assert _rows(shop.site, offer_code=code) == []


def test_a_used_single_use_code_is_refused_with_when_and_where(shop: Shop) -> None:
    code = Browser.open(shop.site).claim("floor")
    assert shop.mia.redeem(code, "10", "R-200").status_code == 200
    again = shop.mia.check(code)
    (kind, text), *_ = notices(again)
    assert kind == "bad" and "Dieser Code wurde bereits verwendet" in text
    assert "Cedar & Clay Kreuzberg" in text
    # even a confirm form kept from before is refused, and nothing is added
    refused = shop.mia.post(
        "/till/confirm",
        {
            "csrf": shop.mia.csrf("/till"),
            "code": code,
            "request_id": "kept-from-before-1",
            "amount": "10",
            "receipt": "R-201",
        },
    )
    assert refused.status_code == 409
    assert len(_rows(shop.site, offer_code=code)) == 1


def test_a_staff_member_of_another_store_is_refused(shop: Shop) -> None:
    code = Browser.open(shop.site).claim("floor")
    page = shop.lin.check(code)  # a Xiamen assistant and a Berlin offer
    assert notices(page)[0][0] == "bad" and "Cedar & Clay Kreuzberg" in notices(page)[0][1]
    # posting as another store than one's own is not allowed at all
    forged = shop.lin.check(code, store="berlin-1")
    assert forged.status_code == 403
    assert _rows(shop.site, offer_code=code) == []


def test_a_wrong_csrf_token_changes_nothing(shop: Shop) -> None:
    code = Browser.open(shop.site).claim("floor")
    page = shop.mia.check(code)
    request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
    data = {"csrf": "not-the-token", "code": code, "request_id": request_id}
    answer = shop.mia.post("/till/confirm", {**data, "amount": "12", "receipt": "R-300"})
    assert answer.status_code == 403
    assert _rows(shop.site, offer_code=code) == []


def test_an_offer_for_one_store_is_refused_in_its_neighbour(shop: Shop) -> None:
    code = Browser.open(shop.site).claim("only-2")
    (kind, text), *_ = notices(shop.mia.check(code))
    assert kind == "bad" and "Cedar & Clay Prenzlauer Berg" in text
    assert shop.ana.redeem(code, "5", "P-1", store="berlin-2").status_code == 200


def test_limits_per_code_and_in_total(shop: Shop) -> None:
    first, second = Browser.open(shop.site).claim("twice"), Browser.open(shop.site).claim("twice")
    assert shop.mia.redeem(first, "1", "L-1").status_code == 200
    assert shop.mia.redeem(first, "1", "L-2").status_code == 200
    (kind, text), *_ = notices(shop.mia.check(first))
    assert kind == "bad" and "2 Mal verwendet" in text
    assert shop.mia.redeem(second, "1", "L-3").status_code == 200
    (kind, text), *_ = notices(shop.mia.check(second))
    assert kind == "bad" and "ausgeschöpft" in text


def test_the_same_form_sent_twice_records_once_and_undo_takes_it_back(shop: Shop) -> None:
    code = Browser.open(shop.site).claim("floor")
    page = shop.mia.check(code)
    request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
    form = {
        "csrf": shop.mia.csrf("/till"),
        "code": code,
        "request_id": request_id,
        "amount": "19,90",
        "receipt": "R-400",
    }
    first, second = shop.mia.post("/till/confirm", form), shop.mia.post("/till/confirm", form)
    assert "Erfasst" in first.text and "Bereits erfasst" in second.text
    assert len(_rows(shop.site, offer_code=code)) == 1
    undone = shop.mia.post("/till/undo", {"csrf": form["csrf"], "request_id": request_id})
    assert undone.status_code == 200 and notices(undone)[0][0] == "good"
    assert _rows(shop.site, offer_code=code) == []
    # the code can be used again, and a colleague of another store cannot undo this one
    assert shop.mia.redeem(code, "19,90", "R-401").status_code == 200
    again = shop.mia.check(code)
    assert notices(again)[0][0] == "bad"


def test_another_store_cannot_undo(shop: Shop) -> None:
    code = Browser.open(shop.site).claim("floor")
    done = shop.mia.redeem(code, "3", "R-500")
    request_id = done.text.split('name="request_id" value="')[1].split('"')[0]
    refused = shop.lin.post(
        "/till/undo", {"csrf": shop.lin.csrf("/till"), "request_id": request_id}
    )
    assert refused.status_code == 403
    assert len(_rows(shop.site, offer_code=code)) == 1


def test_yuan_are_read_with_the_sign_in_xiamen(shop: Shop) -> None:
    code = Browser.open(shop.site).claim("tea")
    done = shop.lin.redeem(code, "¥299", "X-1")
    assert ("good", "已记录：¥299.00 小票 X-1") in notices(done)
    (row,) = _rows(shop.site, offer_code=code)
    assert (row["value_minor"], row["currency"], row["store"]) == (29900, "CNY", "xiamen-1")


def test_an_unreadable_amount_is_asked_again_with_an_example(shop: Shop) -> None:
    code = Browser.open(shop.site).claim("floor")
    page = shop.mia.redeem(code, "viel", "R-600")
    assert page.status_code == 422 and "z. B. 45,50" in page.text
    assert _rows(shop.site, offer_code=code) == []


def test_guessing_is_slowed_per_account_not_per_address(shop: Shop) -> None:
    guesser = Browser.open(shop.site)
    guesser.login("guesser")
    statuses = [guesser.check(f"CC-2222{n + 2}-Z").status_code for n in range(7)]
    assert statuses[:5] == [422] * 5 and statuses[5:] == [429, 429]
    # Mia works at the same till, behind the same address: she is not held up
    code = Browser.open(shop.site).claim("floor")
    assert notices(shop.mia.check(code))[0][0] == "good"


def test_the_till_forgives_case_spaces_a_missing_prefix_and_says_when_a_code_is_mistyped(
    shop: Shop,
) -> None:
    code = Browser.open(shop.site).claim("floor")
    body = code.split("-", 1)[1]
    assert notices(shop.mia.check(body.replace("-", "").lower()))[0][0] == "good"
    assert notices(shop.mia.check("c c " + body))[0][0] == "good"
    mistyped = shop.mia.check(code[:-2] + "0" + code[-1])
    assert mistyped.status_code == 422 and "keine 0, O, 1 oder I" in mistyped.text


def test_one_sale_entered_at_the_till_and_by_cli_counts_once(shop: Shop) -> None:
    story = offer_story("floor", "berlin")
    code = shared_code(shop.site, story, "d-cli")
    assert shop.mia.redeem(code, "45,50", "R-700").status_code == 200
    done = storyloop(
        shop.site, "redeem", code, "--value", "45.50", "--store", "berlin-1", "--receipt", "R-700"
    )
    assert done.returncode == 0 and "already recorded" in done.stdout, done.stderr
    # the same receipt number in the other Berlin store is another sale
    other = storyloop(
        shop.site, "redeem", code, "--value", "8", "--store", "berlin-2", "--receipt", "R-700"
    )
    assert other.returncode == 0 and "redemption recorded" in other.stdout
    stores = sorted(r["store"] for r in _rows(shop.site, offer_code=code))
    assert stores == ["berlin-1", "berlin-2"]
    cny = storyloop(shop.site, "redeem", code, "--value", "8", "--store", "berlin-1")
    assert cny.returncode == 0
    assert {r["currency"] for r in _rows(shop.site, offer_code=code)} == {"EUR"}
