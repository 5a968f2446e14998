"""Referral codes at the till, against a real ``storyloop serve`` on SQLite and PostgreSQL.

A customer who came through a Mastodon post redeems her personal code and is handed a referral
code; friends redeem it (by itself, or given beside their own code), a friend's own referral
code brings one more, and ``storyloop report`` shows the customers brought by customers on the
Mastodon post's row, as this test counts them from what it did. Self-referral (same receipt,
same code, same phone) and the owner's cap are refused with the sentence the assistant says;
the returning referrer's rewards show at the till and are handed over once each.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from publisher.tracking import prepare_links
from publisher.tracking.schema import conversions
from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import (
    PHONE,
    Browser,
    add_user,
    notices,
    offer_story,
    open_shop,
    shared_code,
    storyloop,
    write_manifest,
)

REFERRALS = {"reward": "a free coffee", "friends_per_reward": 2, "max_per_referrer": 3}
REFERRAL_RE = re.compile(r'id="referral-code">([A-Z0-9-]+)<')


def enable_referrals(site: Site, rules: dict[str, Any] = REFERRALS) -> None:
    """The owner's rule, as a line in the site's pelicanconf.py."""
    with (site.root / "pelicanconf.py").open("a", encoding="utf-8") as conf:
        conf.write(f'\nSTORYLOOP["referrals"] = {rules!r}\n')


@dataclass
class Counter_:
    site: Site
    mia: Browser  # staff at berlin-1


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def till(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Counter_]:
    root = tmp_path_factory.mktemp("referral") / "site"
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'var' / 'storyloop.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    site = open_shop(root, url)
    enable_referrals(site)
    write_manifest(
        site,
        offer_story("floor", "berlin"),
        offer_story("bed", "berlin", offer="A pillow with the bed"),
        offer_story("window", "berlin"),
    )
    add_user(site, "mia", "staff", "berlin-1")
    tracker = Tracker(site).start()
    mia = Browser.open(site)
    mia.http.cookies.set("sl_lang", "en")  # the Berlin till speaks German otherwise
    assert mia.login("mia").status_code == 303
    try:
        yield Counter_(site, mia)
    finally:
        tracker.kill()
        site.engine.dispose()


def _tracked_link(site: Site, slug: str, delivery: str) -> str:
    """The tracked link of a story's page in a Mastodon post (as the engine makes it)."""
    story = offer_story(slug, "berlin")
    with site.engine.begin() as conn:
        links = prepare_links(
            conn, site.settings, delivery_id=delivery, story=story, channel="mastodon", variant="A"
        )
    return links.get(story.url)


def _phone(site: Site) -> Browser:
    phone = Browser.open(site)
    phone.http.cookies.set("sl_lang", "en")  # pages at a Berlin store speak German otherwise
    return phone


def _referral_code(page: Any) -> str:
    found = REFERRAL_RE.search(page.text)
    assert found, page.text
    return found.group(1)


def _refusals(page: Any) -> list[str]:
    return [text for kind, text in notices(page) if kind == "bad"]


def _with_friend_code(till: Counter_, code: str, friend: str, receipt: str) -> Any:
    """Redeem ``code`` with a friend's referral code typed in the optional field."""
    page = till.mia.check(code)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page.text)
    assert request_id and 'name="referral"' in page.text, page.text
    data = {
        "csrf": till.mia.csrf("/till"),
        "code": code,
        "request_id": request_id.group(1),
        "amount": "20,00",
        "receipt": receipt,
        "referral": friend,
    }
    return till.mia.post("/till/confirm", data)


def test_a_chain_of_friends_is_credited_to_the_post_that_started_it(till: Counter_) -> None:
    site = till.site
    anna = _phone(site)  # came through the Mastodon post
    link = _tracked_link(site, "floor", "post-floor-mastodon")
    came = anna.http.get(link, allow_redirects=False, headers={"User-Agent": PHONE})
    assert came.status_code == 302
    anna_code = anna.claim("floor")
    done = till.mia.redeem(anna_code, "45,50", "R-100")
    assert done.status_code == 200, done.text
    referral = _referral_code(done)
    assert referral != anna_code and referral.startswith("CC-")
    credited: Counter[tuple[str, str]] = Counter()  # what this test expects in the report

    # a friend with nothing but the referral code gets the offer of Anna's story
    ben = till.mia.redeem(referral, "30,00", "R-101")
    assert ben.status_code == 200 and "A free sample for floor" in ben.text, ben.text
    credited[("floor", "mastodon")] += 1
    ben_referral = _referral_code(ben)
    assert ben_referral != referral

    # a friend with a code of her own gives Anna's referral code beside it
    cara = _phone(site)
    cara_code = cara.claim("window")
    page = _with_friend_code(till, cara_code, referral.lower().replace("-", " "), "R-102")
    assert page.status_code == 200, page.text
    credited[("floor", "mastodon")] += 1

    # Anna herself, from the same phone, with a code of another story: the same person
    own = anna.claim("bed")
    page = _with_friend_code(till, own, referral, "R-103")
    assert page.status_code == 409
    assert _refusals(page) == [
        "Not accepted This code was claimed on the same phone as the referral code's: a "
        "customer cannot bring themselves."
    ]
    # Eva came with the code printed in a post; the same code again is not a friend
    post_code = shared_code(site, offer_story("window", "berlin"), "post-window-1")
    eva = _referral_code(till.mia.redeem(post_code, "15,00", "R-110"))
    page = _with_friend_code(till, post_code, eva, "R-111")
    assert page.status_code == 409
    assert _refusals(page) == [
        "Not accepted This is the code the referral code was given for: a customer cannot "
        "bring themselves."
    ]
    # nor is the receipt Anna was given her referral code with
    page = till.mia.redeem(referral, "45,50", "R-100")
    assert page.status_code == 409
    assert _refusals(page) == [
        "Not accepted This is the receipt the referral code was given with: a customer "
        "cannot bring themselves."
    ]

    # Ben's own referral code brings Gina: still the Mastodon post's chain
    assert till.mia.redeem(ben_referral, "12,00", "R-105").status_code == 200
    credited[("floor", "mastodon")] += 1
    assert till.mia.redeem(referral, "18,00", "R-106").status_code == 200  # Anna's third
    credited[("floor", "mastodon")] += 1

    # the cap: three friends per customer
    check = till.mia.check(referral)
    assert _refusals(check) == [
        "Not accepted This referral code has brought 3 friends, the most one customer can bring."
    ]
    # the till still shows the rewards below the refusal
    assert "Friends brought" in check.text and "<dd>3</dd>" in check.text

    # Anna comes back: 3 friends at 2 per reward is one reward, handed over once
    assert re.search(r"Hand over a reward \(1 due\): a free coffee", check.text), check.text
    data = {"csrf": till.mia.csrf("/till"), "code": referral}
    given = till.mia.post("/till/reward", data)
    assert given.status_code == 200
    assert ("good", "Hand over: a free coffee") in notices(given)
    again = till.mia.post("/till/reward", {"csrf": till.mia.csrf("/till"), "code": referral})
    assert again.status_code == 409 and "No reward due now" in again.text

    # nothing was written by the refusals: five sales besides Anna's, each once
    with site.engine.connect() as conn:
        rows = conn.execute(select(conversions.c.order_id, conversions.c.code_kind)).all()
    assert sorted(r.order_id for r in rows) == [
        "R-100", "R-101", "R-102", "R-105", "R-106", "R-110"
    ]  # fmt: skip

    report = storyloop(till.site, "report", "--format", "json")
    assert report.returncode == 0, report.stderr
    found = json.loads(report.stdout)["brought_by_customers"]
    assert {(r["story"], r["channel"]): r["customers"] for r in found} == dict(credited)
    table = storyloop(till.site, "report")
    assert "customers brought by customers" in table.stdout
    assert re.search(r"floor\s+│?\s*mastodon\s+│?\s*4", table.stdout), table.stdout


def test_the_referral_page_is_the_customer_s_to_keep(till: Counter_) -> None:
    code = shared_code(till.site, offer_story("window", "berlin"), "post-window-2")
    done = till.mia.redeem(code, "10,00", "R-200")
    referral = _referral_code(done)
    page = _phone(till.site).get(f"/referral/{referral}")
    assert page.status_code == 200
    assert referral in page.text and "A free sample for window" in page.text
    assert "a free coffee for every 2 friends" in page.text
    assert _phone(till.site).get("/referral/CC-22222-2").status_code == 404


@pytest.mark.parametrize(
    ("rules", "said"),
    [
        ({"friends_per_reward": 2}, '["reward"]: expected what the referrer is given'),
        ({"reward": "a coffee", "max_per_referrer": 0}, '["max_per_referrer"]: expected a whole'),
        ({"reward": "a coffee", "friends_per_reward": "2"}, '["friends_per_reward"]: expected'),
    ],
)
def test_a_wrong_referral_rule_is_one_line_and_changes_nothing(
    tmp_path: Path, rules: dict[str, Any], said: str
) -> None:
    site = open_shop(tmp_path / "site", f"sqlite:///{tmp_path / 'site' / 'var' / 'db.sqlite'}")
    write_manifest(site, offer_story("floor", "berlin"))
    code = shared_code(site, offer_story("floor", "berlin"), "post-1")
    enable_referrals(site, rules)
    done = storyloop(site, "redeem", code, "--value", "12", "--store", "berlin-1", "--receipt", "1")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "pelicanconf.py" in line and 'STORYLOOP["referrals"]' in line and said in line, line
    with site.engine.connect() as conn:
        assert conn.execute(select(conversions)).all() == []
    site.engine.dispose()


def test_an_undone_friend_s_sale_takes_its_credit_back(till: Counter_) -> None:
    code = shared_code(till.site, offer_story("window", "berlin"), "post-window-3")
    referral = _referral_code(till.mia.redeem(code, "10,00", "R-300"))
    friend = till.mia.redeem(referral, "10,00", "R-301")
    assert "<dd>1</dd>" in till.mia.check(referral).text
    request_id = re.search(r'name="request_id" value="([^"]+)"', friend.text)
    assert request_id
    undone = till.mia.post(
        "/till/undo", {"csrf": till.mia.csrf("/till"), "request_id": request_id.group(1)}
    )
    assert undone.status_code == 200
    again = till.mia.check(referral)
    assert "Friends brought</dt><dd>0</dd>" in again.text, again.text
    # the friend's own referral code, handed out at the undone sale, went with it
    assert _phone(till.site).get(f"/referral/{_referral_code(friend)}").status_code == 404
