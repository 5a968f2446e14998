"""Validation of editors' content: the same messages from `storyloop check` and from the build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from publisher.cli import main
from publisher.content import parse_publish

CONF = """
SITENAME = "Test shop"
SITEURL = "http://shop.test"
PATH = "content"
TIMEZONE = "Asia/Shanghai"
DEFAULT_LANG = "en"
PLUGINS = ["publisher.pelican_plugin"]
ARTICLE_PATHS = ["stories", "testimonials"]
STATIC_PATHS = ["images"]
USE_FOLDER_AS_CATEGORY = False
ARTICLE_URL = "{category}/{slug}.html"
ARTICLE_SAVE_AS = "{category}/{slug}.html"
STORYLOOP_REGIONS = {"xiamen": "Xiamen", "berlin": "Berlin"}
STORYLOOP = {
    "stores": {"xiamen-1": {"name": "Xiamen shop"}},
    "channels": {
        "mastodon": {"token": {"env": "NOPE"}},
        "telegram": {"chat_id": "@shop"},
        %(extra_channels)s
    },
}
"""

GOOD_STORY = {
    "Title": "A kitchen in six weeks",
    "Date": "2026-11-20 10:00",
    "Slug": "kitchen",
    "Lang": "en",
    "Category": "stories",
    "Region": "xiamen",
    "Channels": "mastodon, telegram",
    "Publish": "2026-11-24 09:30 Asia/Shanghai",
    "Image": "images/kitchen.jpg",
    "Image-Alt": "A bright kitchen with oak cabinets",
}

GOOD_TESTIMONIAL = {
    "Title": "Our new living room",
    "Date": "2026-11-19",
    "Slug": "lin-living-room",
    "Category": "testimonials",
    "Customer": "Lin W.",
    "Consent": "yes",
    "Consent-Until": "2031-01-01",
    "Rating": "5",
    "Store": "xiamen-1",
}


class Site:
    def __init__(self, root: Path, extra_channels: str = "") -> None:
        self.root = root
        (root / "pelicanconf.py").write_text(CONF % {"extra_channels": extra_channels})
        for sub in ("stories", "testimonials", "images"):
            (root / "content" / sub).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (60, 40), (200, 120, 80)).save(root / "content/images/kitchen.jpg")

    def write(self, name: str, fields: dict[str, str], body: str = "Some words.") -> Path:
        folder = "testimonials" if fields.get("Category") == "testimonials" else "stories"
        path = self.root / "content" / folder / name
        header = "\n".join(f"{k}: {v}" for k, v in fields.items())
        path.write_text(f"{header}\n\n{body}\n", encoding="utf-8")
        return path

    def check(self, *args: str) -> Result:
        conf = str(self.root / "pelicanconf.py")
        return CliRunner().invoke(main, ["--config", conf, "check", *args])

    def problems(self) -> list[dict[str, object]]:
        result = self.check("--json")
        data: list[dict[str, object]] = json.loads(result.stdout)
        return data


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def only(problems: list[dict[str, object]], field: str) -> dict[str, object]:
    found = [p for p in problems if p["field"] == field]
    assert len(found) == 1, problems
    return found[0]


def test_a_good_site_has_no_problems(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY)
    site.write("lin.md", GOOD_TESTIMONIAL)
    result = site.check()
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_unknown_channel_names_file_line_and_configured_channels(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Channels": "mastodon, myspace"})
    result = site.check()
    assert result.exit_code == 1
    assert (
        "content/stories/kitchen.md:7: Channels: unknown channel 'myspace' "
        "(configured: mastodon, telegram)"
    ) in result.output


def test_unparseable_date_is_an_error(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Date": "next tuesday-ish"})
    problem = only(site.problems(), "Date")
    assert problem["line"] == 2 and problem["severity"] == "error"
    assert "cannot read 'next tuesday-ish'" in str(problem["message"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-11-24 09:30 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("the day after", "cannot read 'the day after'"),
        ("2026-11-24T09:30+08:00 Asia/Shanghai", "gives both an offset and a zone"),
    ],
)
def test_bad_publish_time_or_zone_is_an_error(site: Site, value: str, message: str) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Publish": value})
    problem = only(site.problems(), "Publish")
    assert message in str(problem["message"]) and problem["line"] == 8


def test_publish_accepts_zone_names_offsets_and_the_site_zone() -> None:
    at, zone = parse_publish("2026-03-29 02:30 Europe/Berlin", "UTC")
    assert zone == "Europe/Berlin" and at.isoformat() == "2026-03-29T01:30:00+00:00"
    at, zone = parse_publish("2026-11-24T09:30:00+08:00", "UTC")
    assert zone == "Etc/GMT-8" and at.hour == 1
    at, zone = parse_publish("2026-11-24 09:30", "Asia/Shanghai")
    assert zone == "Asia/Shanghai" and at.hour == 1


def test_duplicate_slug_names_both_files(site: Site) -> None:
    site.write("a.md", GOOD_STORY)
    site.write("b.md", GOOD_STORY | {"Title": "Another"})
    problem = only(site.problems(), "Slug")
    assert problem["path"] == "content/stories/b.md"
    assert "also used by content/stories/a.md" in str(problem["message"])


def test_testimonial_without_consent_is_an_error(site: Site) -> None:
    site.write("lin.md", {k: v for k, v in GOOD_TESTIMONIAL.items() if k != "Consent"})
    problem = only(site.problems(), "Consent")
    assert problem["severity"] == "error"
    assert "never built nor published" in str(problem["message"])
    assert problem["expected"] == "Consent: yes"


def test_consent_no_is_an_error_too(site: Site) -> None:
    site.write("lin.md", GOOD_TESTIMONIAL | {"Consent": "no"})
    assert only(site.problems(), "Consent")["line"] == 6


def test_storyloop_build_fails_with_one_line_per_problem(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Channels": "myspace"})
    conf = str(site.root / "pelicanconf.py")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("storyloop")), "--config", conf, "build"],
        cwd=site.root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        "content/stories/kitchen.md:7: Channels: unknown channel 'myspace' "
        "(configured: mastodon, telegram)\n"
    ) in done.stderr


def test_passed_consent_until_is_a_warning(site: Site) -> None:
    site.write("lin.md", GOOD_TESTIMONIAL | {"Consent-Until": "2020-01-31"})
    problem = only(site.problems(), "Consent-Until")
    assert problem["severity"] == "warning"
    assert "consent ended on 2020-01-31: never published again" in str(problem["message"])
    assert site.check().exit_code == 0
    assert site.check("--fatal", "warnings").exit_code == 1


@pytest.mark.parametrize("rating", ["0", "6", "4.5", "five"])
def test_rating_outside_one_to_five_is_an_error(site: Site, rating: str) -> None:
    site.write("lin.md", GOOD_TESTIMONIAL | {"Rating": rating})
    problem = only(site.problems(), "Rating")
    assert problem["expected"] == "a whole number from 1 to 5"


def test_missing_image_file_is_an_error(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Image": "images/nope.jpg"})
    problem = only(site.problems(), "Image")
    assert problem["severity"] == "error" and "file not found: images/nope.jpg" in str(
        problem["message"]
    )


def test_image_without_alt_text_is_a_warning(site: Site) -> None:
    site.write("kitchen.md", {k: v for k, v in GOOD_STORY.items() if k != "Image-Alt"})
    problem = only(site.problems(), "Image")
    assert problem["severity"] == "warning" and "alt text" in str(problem["message"])


def test_offer_without_store_or_region_is_a_warning(site: Site) -> None:
    fields = {k: v for k, v in GOOD_STORY.items() if k != "Region"} | {"Offer": "10% off"}
    site.write("kitchen.md", fields)
    problem = only(site.problems(), "Offer")
    assert problem["severity"] == "warning"


def test_unknown_region_store_and_channel_text_but_any_category(site: Site) -> None:
    site.write(
        "kitchen.md",
        GOOD_STORY
        | {"Region": "paris", "Store": "paris-9", "Category": "news", "Myspace-Text": "hi"},
    )
    fields = {p["field"]: p for p in site.problems()}
    assert "unknown region 'paris'" in str(fields["Region"]["message"])
    assert "unknown store 'paris-9'" in str(fields["Store"]["message"])
    assert "Category" not in fields  # categories are whatever the site uses
    assert "no channel named 'myspace'" in str(fields["Myspace-Text"]["message"])


def test_misspelt_field_is_a_warning(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Chanels": "mastodon"})
    assert only(site.problems(), "Chanels")["severity"] == "warning"


def test_unknown_channel_type_in_settings_is_reported(tmp_path: Path) -> None:
    site = Site(tmp_path, extra_channels='"friendster": {"type": "friendster"},')
    site.write("kitchen.md", GOOD_STORY)
    problem = only(site.problems(), "STORYLOOP.channels.friendster")
    assert problem["path"] == "pelicanconf.py"
    assert 'No channel named "friendster" (installed: ' in str(problem["message"])


def test_text_output_is_one_line_per_problem(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Channels": "myspace", "Date": "soon"})
    result = site.check()
    lines = [line for line in result.output.splitlines() if line.startswith("content/")]
    assert len(lines) == 2
    assert all(line.count(": ") >= 2 and line.endswith("[error]") for line in lines)


def build(site: Site, *extra: str) -> subprocess.CompletedProcess[str]:
    pelican = Path(sys.executable).with_name("pelican")
    return subprocess.run(
        [str(pelican), "content", "-s", "pelicanconf.py", "-o", "output", *extra],
        env={**os.environ, "COLUMNS": "400"},
        cwd=site.root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_build_finds_duplicate_slugs_as_check_does(site: Site) -> None:
    """The build keeps of each header only what the checks across files read: a duplicate
    slug, given or made from the title, still fails it on the line check names."""
    site.write("a.md", GOOD_STORY)
    site.write("b.md", GOOD_STORY | {"Title": "Another"})
    untitled = {k: v for k, v in GOOD_STORY.items() if k != "Slug"}
    site.write("c.md", untitled | {"Title": "Same words"})
    site.write("d.md", untitled | {"Title": "Same words", "Lang": "en"})
    checked = {f"{p['path']}:{p['line']}" for p in site.problems() if p["field"] == "Slug"}
    assert checked == {"content/stories/b.md:3", "content/stories/d.md:1"}
    done = build(site)
    assert done.returncode == 1
    for where, slug, first in [("b.md:3", "kitchen", "a.md"), ("d.md:1", "same-words", "c.md")]:
        assert (
            f"content/stories/{where}: Slug: duplicate slug {slug!r}, also used by "
            f"content/stories/{first}"
        ) in done.stdout + done.stderr


def test_plain_pelican_fails_with_the_same_messages_and_builds_nothing_unconsented(
    site: Site,
) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Channels": "myspace"})
    site.write("lin.md", {k: v for k, v in GOOD_TESTIMONIAL.items() if k != "Consent"})
    checked = site.check().output
    done = build(site)
    assert done.returncode == 1
    logged = " ".join((done.stdout + done.stderr).split())
    for line in checked.splitlines():
        if line.startswith("content/"):
            assert line.removesuffix("  [error]") in logged
    assert not (site.root / "output/testimonials/lin-living-room.html").exists()
    assert "Traceback" not in done.stderr


def test_expired_consent_builds_the_rest_but_not_the_testimonial(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY)
    site.write("lin.md", GOOD_TESTIMONIAL | {"Consent-Until": "2020-01-31"})
    done = build(site)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((site.root / "output/storyloop-manifest.json").read_text())
    assert [s["slug"] for s in manifest["stories"]] == ["kitchen"]
    assert not (site.root / "output/testimonials/lin-living-room.html").exists()
    assert build(site, "--fatal", "warnings").returncode != 0


def test_the_engine_does_not_inherit_pelicans_logger_class() -> None:
    """Pelican replaces the logger class with one that drops repeated warnings; a long-running
    engine must still say 'channel paused' every time it happens."""
    code = (
        "import logging, publisher.cli, publisher.scheduler, publisher.dispatch\n"
        "assert logging.getLoggerClass() is logging.Logger, logging.getLoggerClass()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
