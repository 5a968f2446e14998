"""Where the owner's settings allow it, the till accepts a refusal's case with a visible warning,
and the conversion remembers which rule it passed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from publisher.model import OfferRules
from publisher.tracking.schema import conversions
from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import Browser, add_user, notices, offer_story, open_shop, write_manifest


def test_an_expired_offer_is_accepted_with_a_warning_when_the_owner_allows_it(
    tmp_path: Path, serve: Callable[[Site], Tracker]
) -> None:
    root = tmp_path / "site"
    site = open_shop(
        root, f"sqlite:///{root / 'var' / 'db.sqlite'}", shop={"accept_with_warning": ["expired"]}
    )
    ended = datetime.now(UTC) - timedelta(days=2)
    write_manifest(
        site,
        offer_story("old", "berlin", offer_rules=OfferRules(until=ended)),
        offer_story("tea", "xiamen"),
    )
    add_user(site, "mia", "staff", "berlin-1")
    serve(site)
    mia = Browser.open(site)
    mia.login("mia")

    code = Browser.open(site).claim("old")
    (kind, text), *_ = notices(mia.check(code))
    assert kind == "warn" and text.startswith("Angenommen, mit Warnung Dieses Angebot endete am")
    done = mia.redeem(code, "45,50", "W-1")
    assert ("warn", text) in notices(done)
    with site.engine.connect() as conn:
        row = conn.execute(select(conversions).where(conversions.c.offer_code == code)).one()
    assert (row.warning, row.value_minor) == ("expired", 4550)

    # what the owner did not allow is still refused: another region
    other = Browser.open(site).claim("tea")
    assert notices(mia.check(other))[0][0] == "bad"
    site.engine.dispose()


def test_an_unknown_reason_in_the_settings_is_one_clear_line(tmp_path: Path) -> None:
    from tests.web.shopkit import storyloop

    root = tmp_path / "site"
    site = open_shop(
        root, f"sqlite:///{root / 'var' / 'db.sqlite'}", shop={"accept_with_warning": ["late"]}
    )
    done = storyloop(site, "redeem", "CC-22222-Z", "--value", "1", "--store", "berlin-1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "accept_with_warning: unknown 'late'" in done.stderr
    site.engine.dispose()
