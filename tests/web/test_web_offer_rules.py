"""Offer-Stores, Offer-Until and Offer-Limit: checked by `storyloop check` with file, line and
field, and carried by the build into the manifest the till reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from publisher.content import parse_offer_limit, parse_offer_until
from tests.test_content import GOOD_STORY, Site, only

OFFER = {**GOOD_STORY, "Offer": "A free sample board", "Store": "xiamen-1"}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_offer_rules_reach_the_manifest(tmp_path: Path) -> None:
    site = Site(tmp_path)
    rules = {
        "Offer-Stores": "xiamen-1",
        "Offer-Until": "2026-12-31",
        "Offer-Limit": "1 per customer, 200 in total",
    }
    site.write("kitchen.md", {**OFFER, **rules})
    result = site.check("--fatal", "warnings")
    assert result.exit_code == 0, result.output
    from click.testing import CliRunner

    from publisher.cli import main

    out = tmp_path / "output"
    conf = str(site.root / "pelicanconf.py")
    built = CliRunner().invoke(main, ["--config", conf, "build", "--output", str(out)])
    assert built.exit_code == 0, built.output
    (story,) = json.loads((out / "storyloop-manifest.json").read_text("utf-8"))["stories"]
    assert story["offer_rules"] == {
        "stores": ["xiamen-1"],
        "until": "2026-12-31T16:00:00Z",  # the end of 31 December in Asia/Shanghai
        "per_code": None,
        "per_customer": 1,
        "total": 200,
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Offer-Until", "soon", "cannot read 'soon' as a date and time"),
        ("Offer-Until", "2026-12-31 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("Offer-Limit", "lots", "cannot read 'lots'"),
        ("Offer-Limit", "1 per code, 2 per code", "'per code' is given twice"),
        ("Offer-Limit", "0 in total", "'0 in total': a limit is at least 1"),
        ("Offer-Stores", "xiamen-1, paris-1", "unknown store 'paris-1'"),
    ],
)
def test_a_bad_offer_rule_names_file_line_and_field(
    site: Site, field: str, value: str, message: str
) -> None:
    path = site.write("kitchen.md", {**OFFER, field: value})
    result = site.check()
    assert result.exit_code == 1
    problem = only(site.problems(), field)
    assert problem["message"] == message and problem["severity"] == "error"
    line = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith(field)
    )
    assert f"{path.relative_to(site.root)}:{line}: {field}: {message}" in result.output


def test_a_rule_without_an_offer_is_an_error(site: Site) -> None:
    site.write("kitchen.md", {**GOOD_STORY, "Offer-Until": "2026-12-31"})
    problem = only(site.problems(), "Offer-Until")
    assert problem["message"] == "a rule for an offer the story does not make"


def test_offer_limit_and_until_read_what_editors_write() -> None:
    assert parse_offer_limit("once per code; 3 per customer") == {"per_code": 1, "per_customer": 3}
    end = parse_offer_until("2026-12-31 18:00 Europe/Berlin", "Asia/Shanghai")
    assert end.isoformat() == "2026-12-31T17:00:00+00:00"
