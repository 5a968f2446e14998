from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from trackkit import Site, make_story

from publisher.tracking.poster import make_poster
from publisher.tracking.schema import links, offer_codes


def test_poster_has_a_qr_for_an_offline_tracked_link_and_the_offer_code(
    sqlite_site: Site, tmp_path: Path
) -> None:
    story = make_story()
    made = make_poster(sqlite_site.engine, sqlite_site.settings, story, tmp_path / "posters")
    assert made.url.startswith(f"http://127.0.0.1:{sqlite_site.port}/go/")
    svg = made.svg.read_text(encoding="utf-8")
    assert svg.startswith("<svg") and made.offer_code and made.offer_code in svg
    assert story.offer and story.offer in svg
    assert made.pdf.read_bytes().startswith(b"%PDF")
    with sqlite_site.engine.connect() as conn:
        code = made.url.rsplit("/", 1)[1]
        row = conn.execute(select(links).where(links.c.code == code)).mappings().one()
        offer = conn.execute(select(offer_codes.c.channel)).scalar_one()
    assert row["channel"] == "offline" and offer == "offline"
    assert "utm_medium=offline" in row["target"]


def test_printing_the_poster_again_keeps_the_same_link_and_code(
    sqlite_site: Site, tmp_path: Path
) -> None:
    first = make_poster(sqlite_site.engine, sqlite_site.settings, make_story(), tmp_path)
    second = make_poster(sqlite_site.engine, sqlite_site.settings, make_story(), tmp_path)
    assert (first.url, first.offer_code) == (second.url, second.offer_code)
