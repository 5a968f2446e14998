from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from channels.base import Links
from publisher.tracking import codes, prepare_links
from publisher.tracking.codes import LINK_CODE_RE
from publisher.tracking.links import story_links
from publisher.tracking.schema import links, offer_codes
from tests.tracking.trackkit import Site, make_story

SOFA = "http://127.0.0.1:8000/shop/sofa.html?utm_source=editor"


def _prepare(
    site: Site, delivery_id: str = "d1", channel: str = "mastodon", variant: str = "A"
) -> Links:
    with site.engine.begin() as conn:
        return prepare_links(
            conn,
            site.settings,
            delivery_id=delivery_id,
            story=make_story(),
            channel=channel,
            variant=variant,
        )


def _target(site: Site, tracked: str) -> str:
    code = tracked.rsplit("/", 1)[1]
    with site.engine.connect() as conn:
        return str(conn.execute(select(links.c.target).where(links.c.code == code)).scalar_one())


def test_every_link_of_the_post_becomes_a_tracked_link_on_the_tracker(any_site: Site) -> None:
    result = _prepare(any_site)
    base = f"http://127.0.0.1:{any_site.port}/go/"
    story = make_story()
    assert set(result.urls) >= {story.url, "/shop/sofa.html?utm_source=editor", SOFA}
    assert "https://maps.example/store?id=7#map" in result.urls
    for tracked in result.urls.values():
        assert tracked.startswith(base)
        assert LINK_CODE_RE.fullmatch(tracked[len(base) :])
    assert result.get("/shop/sofa.html?utm_source=editor") == result.get(SOFA)


def test_mail_phone_and_fragment_links_are_left_alone(any_site: Site) -> None:
    result = _prepare(any_site)
    assert not any(u.startswith(("mailto:", "tel:", "#")) for u in result.urls)


def test_calling_again_for_the_same_delivery_returns_the_same_codes(any_site: Site) -> None:
    first, second = _prepare(any_site), _prepare(any_site)
    assert first == second
    with any_site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(links)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(offer_codes)).scalar_one() == 1


def test_a_fresh_code_already_taken_is_drawn_again(
    any_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _prepare(any_site, "d1")
    taken = [u.rsplit("/", 1)[1] for u in dict.fromkeys(first.urls.values())]
    real_link, real_offer = codes.new_link_code, codes.new_offer_code
    links_drawn = iter(taken)  # the first draws for d2 are d1's codes
    offers_drawn = iter([str(first.offer_code)])
    monkeypatch.setattr(codes, "new_link_code", lambda: next(links_drawn, None) or real_link())
    monkeypatch.setattr(
        codes, "new_offer_code", lambda prefix: next(offers_drawn, None) or real_offer(prefix)
    )
    second = _prepare(any_site, "d2", channel="telegram")
    assert set(second.urls.values()).isdisjoint(first.urls.values())
    assert second.offer_code not in (None, first.offer_code)
    assert _prepare(any_site, "d1") == first
    with any_site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(links)).scalar_one() == 6
        assert conn.execute(select(func.count()).select_from(offer_codes)).scalar_one() == 2


def test_codes_differ_per_delivery(any_site: Site) -> None:
    a, b = _prepare(any_site, "d1"), _prepare(any_site, "d2", channel="telegram")
    assert set(a.urls.values()).isdisjoint(b.urls.values())
    assert a.offer_code != b.offer_code


def test_targets_carry_utm_parameters_and_the_editors_own_values_win(any_site: Site) -> None:
    result = _prepare(any_site, channel="email", variant="B")
    query = parse_qs(urlsplit(_target(any_site, result.get(SOFA))).query)
    assert query["utm_source"] == ["editor"]
    assert query["utm_medium"] == ["email"]
    assert query["utm_campaign"] == ["kitchen"]
    assert query["utm_content"] == ["B"]


def test_target_keeps_its_own_query_and_fragment(any_site: Site) -> None:
    result = _prepare(any_site)
    target = _target(any_site, result.get("https://maps.example/store?id=7#map"))
    parts = urlsplit(target)
    assert parts.fragment == "map"
    assert parse_qs(parts.query)["id"] == ["7"]
    assert parse_qs(parts.query)["utm_medium"] == ["social"]


def test_a_story_without_an_offer_gets_no_offer_code(any_site: Site) -> None:
    with any_site.engine.begin() as conn:
        result = prepare_links(
            conn,
            any_site.settings,
            delivery_id="d9",
            story=make_story(offer=None),
            channel="mastodon",
            variant=None,
        )
    assert result.offer_code is None
    query = parse_qs(urlsplit(_target(any_site, result.get(make_story().url))).query)
    assert "utm_content" not in query


def test_offer_code_uses_the_configured_prefix_and_a_readable_alphabet(any_site: Site) -> None:
    code = _prepare(any_site).offer_code
    assert code is not None
    prefix, body, check = code.split("-")
    assert prefix == "CC"
    assert len(body) == 5 and len(check) == 1
    assert not set(body + check) & set("01OI")


def _prepare_in_process(config: str, delivery_id: str) -> dict[str, str]:
    from publisher import db
    from publisher import settings as settings_mod

    settings = settings_mod.load(config)
    engine = db.connect(settings.database_url)
    try:
        with engine.begin() as conn:
            links = prepare_links(
                conn,
                settings,
                delivery_id=delivery_id,
                story=make_story(),
                channel="mastodon",
                variant="A",
            )
        return {**links.urls, "offer": str(links.offer_code)}
    finally:
        engine.dispose()


def test_processes_preparing_the_same_delivery_at_once_agree_on_the_codes(
    any_site: Site,
) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    config = str(any_site.settings.source)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=context) as pool:
        results = list(pool.map(_prepare_in_process, [config] * 8, ["d-race"] * 8))
    assert all(r == results[0] for r in results)
    with any_site.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(links)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(offer_codes)).scalar_one() == 1


def test_storyloop_links_lists_a_story_s_tracked_links_and_offer_codes(sqlite_site: Site) -> None:
    from tests.tracking.trackkit import run_storyloop

    result = _prepare(sqlite_site, "d1", channel="mastodon", variant="A")
    done = run_storyloop(sqlite_site, "links", "kitchen")
    assert done.returncode == 0, done.stderr
    assert result.get(SOFA) in done.stdout
    assert f"offer {result.offer_code}" in done.stdout
    assert done.stdout.startswith("mastodon A  http://127.0.0.1:")
    missing = run_storyloop(sqlite_site, "links", "nothing")
    assert missing.returncode == 1 and 'No tracked links for story "nothing"' in missing.stderr


def test_links_written_in_the_summary_and_headlines_are_tracked_too() -> None:
    story = dataclasses.replace(
        make_story(),
        summary="看这里https://shop.example.com/sale.html了解更多 and [the map](https://maps.example.com/x)",
        variants={"A": "New: https://shop.example.com/new"},
    )
    found = story_links(story)
    assert found["https://shop.example.com/sale.html"] == "https://shop.example.com/sale.html"
    assert "https://maps.example.com/x" in found
    assert "https://shop.example.com/new" in found
    assert next(iter(found)) == story.url
