"""One parse of a story's header: typed fields, or the problems with file, line and field.
The build and ``storyloop check`` both call :func:`publisher.content.parse`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from publisher.content import Parsed, Rules, parse, read_header

TESTIMONIAL = """Title: Lin's new kitchen
Date: 2026-11-20
Category: testimonials
Publish: 2026-11-24 09:30 Asia/Shanghai
Channels: mastodon, email
Customer: Lin
Consent: yes
Consent-Until: 2030-12-31
Rating: 5
Store: xiamen
Offer: 10 % off tiles
Offer-Stores: xiamen
Offer-Until: 2026-12-31
Offer-Limit: 2 per customer
Headline-B: A kitchen, at last
Mastodon-Text: Lin's kitchen, in her words

The body.
"""


def parsed(tmp_path: Path, text: str) -> Parsed:
    (tmp_path / "content").mkdir(exist_ok=True)
    path = tmp_path / "content" / "story.md"
    path.write_text(text, encoding="utf-8")
    rules = Rules(
        channels=frozenset({"mastodon", "email"}),
        regions=None,
        stores=frozenset({"xiamen"}),
        timezone="UTC",
        content_dir=tmp_path / "content",
        today=date(2026, 11, 20),
    )
    return parse(read_header(path, "content/story.md"), rules)


def test_a_good_header_parses_into_typed_fields(tmp_path: Path) -> None:
    result = parsed(tmp_path, TESTIMONIAL)
    assert [p for p in result.problems if p.severity == "error"] == []
    fields = result.fields
    assert fields is not None
    assert fields.publish_at == datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    assert fields.timezone == "Asia/Shanghai"
    assert fields.channels == ("mastodon", "email")
    assert fields.variants == {"B": "A kitchen, at last"}
    assert fields.overrides == {"mastodon": "Lin's kitchen, in her words"}
    assert fields.testimonial is not None
    assert (fields.testimonial.consent, fields.testimonial.rating) == (True, 5)
    assert fields.testimonial.consent_until == date(2030, 12, 31)
    assert fields.offer_rules is not None
    assert fields.offer_rules.stores == ("xiamen",)
    assert fields.offer_rules.per_customer == 2
    assert fields.offer_rules.until is not None and fields.offer_rules.until.year == 2027


def test_a_bad_header_gives_problems_with_file_line_and_field_and_no_fields(
    tmp_path: Path,
) -> None:
    text = TESTIMONIAL.replace("Rating: 5", "Rating: five").replace("2026-11-24 09:30", "soon")
    result = parsed(tmp_path, text)
    assert result.fields is None
    found = {(p.path, p.line, p.field) for p in result.problems if p.severity == "error"}
    assert found == {("content/story.md", 4, "Publish"), ("content/story.md", 9, "Rating")}
