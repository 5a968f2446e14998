"""Bad content files through the real commands: `storyloop check` and plain `pelican` each print
one line naming the file, the line and what was expected, exit non-zero, and never a traceback;
paths stay inside the site; header values cannot smuggle in control characters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.test_content import GOOD_STORY, GOOD_TESTIMONIAL, Site, build

BIN = Path(sys.executable).parent


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def check(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    """`storyloop check` as an editor runs it, in its own process."""
    conf = str(site.root / "pelicanconf.py")
    return subprocess.run(
        [str(BIN / "storyloop"), "--config", conf, "check", *args],
        cwd=site.root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "400"},
    )  # fmt: skip


def problem_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "content/" in line]


def refused_by_check_and_build(site: Site, expected: str, *, build_too: bool = True) -> None:
    """One line with ``expected`` from `storyloop check` and from the build; both exit 1.

    (``check`` runs in this process through click's runner, the same command and the same
    error handling, so each case costs one process, the build's, or none.)"""
    checked = site.check()
    assert checked.exit_code == 1, checked.output
    assert checked.exception is None or isinstance(checked.exception, SystemExit), checked.output
    lines = [line for line in problem_lines(checked.output) if expected in line]
    assert len(lines) == 1, problem_lines(checked.output)
    if not build_too:
        return
    built = build(site)
    assert built.returncode == 1, built.stdout + built.stderr
    assert "Traceback" not in built.stdout + built.stderr
    assert lines[0].removesuffix("  [error]") in " ".join((built.stdout + built.stderr).split())


def story_bytes(text: str) -> str:
    header = "\n".join(f"{k}: {v}" for k, v in (GOOD_STORY | {"Title": text}).items())
    return f"{header}\n\n{text}\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            story_bytes("厨房翻新").encode("gbk"),
            "g.md:1: File: not UTF-8: byte 0xb3 (it reads as GBK",
        ),
        (story_bytes("Küche").encode("latin-1"), "g.md:1: File: not UTF-8: byte 0xfc"),
        (story_bytes("厨房").encode("utf-16"), "g.md:1: File: saved as UTF-16"),
        (story_bytes("k").encode("utf-16-le"), "g.md:1: File: holds NUL bytes: a binary file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00" * 4, "g.md:1: File: holds NUL bytes"),
        (story_bytes("a\x00b").encode(), "g.md:1: File: holds a NUL character"),
    ],
    ids=["gbk", "latin-1", "utf-16", "utf-16-without-bom", "binary", "nul"],
)
def test_a_file_that_is_not_utf8_text_is_one_line(site: Site, data: bytes, expected: str) -> None:
    site.write("kitchen.md", GOOD_STORY)
    (site.root / "content/stories/g.md").write_bytes(data)
    refused_by_check_and_build(site, expected)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Date": "9999-12-31T23:59:59-01:00"}, "Date: '9999-12-31T23:59:59-01:00' is outside"),
        ({"Publish": "9999-12-31T23:59:59-01:00"}, "Publish: '9999-12-31T23:59:59-01:00' is out"),
        ({"Date": "1900-01-01"}, "Date: '1900-01-01T00:00:00' is outside the years 1970 to 2199"),
        ({"Publish": "2300-01-01 10:00 Asia/Shanghai"}, "Publish: '2300-01-01 10:00 Asia/Shan"),
        ({"Date": "99999-01-01"}, "Date: cannot read '99999-01-01' as a date"),
    ],
    ids=["date-overflow", "publish-overflow", "too-early", "too-late", "five-digit-year"],
)
def test_dates_that_overflow_or_leave_a_sane_range_are_refused(
    site: Site, fields: dict[str, str], expected: str
) -> None:
    site.write("kitchen.md", GOOD_STORY | fields)
    refused_by_check_and_build(site, expected)


def test_consent_until_outside_the_range_is_refused(site: Site) -> None:
    site.write("lin.md", GOOD_TESTIMONIAL | {"Consent-Until": "0001-01-01"})
    refused_by_check_and_build(site, "Consent-Until: cannot read '0001-01-01' as a date")


@pytest.mark.parametrize(
    "slug", ["../escape", "a/b", "Kitchen", "kitchen--2", "-kitchen", "厨房", "k" * 121]
)
def test_a_slug_must_match_the_documented_pattern(site: Site, slug: str) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Slug": slug})
    refused_by_check_and_build(site, "kitchen.md:3: Slug: ", build_too=slug == "a/b")


def test_a_dotdot_slug_no_longer_vanishes_from_a_passing_build(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY)
    site.write("escape.md", GOOD_STORY | {"Slug": "../../escape"})
    done = build(site)
    assert done.returncode == 1
    assert not (site.root.parent / "escape.html").exists()
    assert "escape.md:3: Slug: '../../escape' is not a slug" in done.stdout + done.stderr


@pytest.mark.parametrize(
    "image", ["../outside.jpg", "/etc/hostname", "images/../../outside.jpg", "images/link.jpg"]
)
def test_an_image_outside_the_content_folder_is_refused(site: Site, image: str) -> None:
    Image.new("RGB", (30, 20)).save(site.root / "outside.jpg")
    (site.root / "content/images/link.jpg").symlink_to(site.root / "outside.jpg")
    site.write("kitchen.md", GOOD_STORY | {"Image": image})
    expected = f"Image: {image!r} is outside the content folder"
    refused_by_check_and_build(site, expected, build_too=image != "/etc/hostname")
    assert not (site.root / "output/storyloop-manifest.json").exists()


def test_an_image_that_is_not_a_picture_is_refused(site: Site) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Image": "stories/kitchen.md"})
    refused_by_check_and_build(site, "Image: 'stories/kitchen.md' is not a picture")


def test_the_build_fails_when_pelican_skips_a_story(site: Site) -> None:
    """Pelican refuses to write outside its output folder, logs it and goes on; the build that
    lost the story must not pass."""
    site.write("kitchen.md", GOOD_STORY)
    site.write("away.md", GOOD_STORY | {"Slug": "away", "Save_as": "../../away.html"})
    done = build(site)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "content/stories/away.md:1: File: Pelican skipped this story" in done.stdout + done.stderr
    )
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("value", "code"),
    [("Line\u2028break", "U+2028"), ("Para\u2029graph", "U+2029"), ("Bell\x07", "U+0007"),
     ("Esc\x1b[31m", "U+001B"), ("C1\x85next", "U+0085")],
    ids=["line-separator", "paragraph-separator", "bell", "escape", "next-line"],
)  # fmt: skip
def test_control_characters_and_line_separators_in_a_header_are_refused(
    site: Site, value: str, code: str
) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Title": value})
    expected = f"kitchen.md:1: Title: control character {code}"
    refused_by_check_and_build(site, expected, build_too=code in ("U+2028", "U+0085"))


def test_a_field_given_twice_is_reported_with_both_lines(site: Site) -> None:
    path = site.write("kitchen.md", GOOD_STORY)
    text = path.read_text("utf-8").replace("Lang: en\n", "Lang: en\ntitle: Another title\n")
    path.write_text(text, "utf-8")
    refused_by_check_and_build(site, "kitchen.md:5: title: given twice (first on line 1)")


@pytest.mark.parametrize("name", ["Headline-1", "Headline-Alt", "Headline-", "Headlines-A"])
def test_headline_variants_are_single_letters(site: Site, name: str) -> None:
    site.write("kitchen.md", GOOD_STORY | {"Headline-A": "One", name: "Two"})
    refused_by_check_and_build(site, f"{name}: not a headline variant", build_too=False)


@pytest.mark.parametrize("rating", ["²", "５", "1_0", "٣"])
def test_a_rating_is_one_ascii_digit(site: Site, rating: str) -> None:
    site.write("lin.md", GOOD_TESTIMONIAL | {"Rating": rating})
    refused_by_check_and_build(site, "Rating: ", build_too=False)


def test_script_urls_in_a_body_are_warned_about_and_removed(site: Site) -> None:
    body = (
        "[a](JaVa&#x09;ScRiPt:alert(1))\n\n<a href=' data:text/html,x'>b</a>\n\nplain data: words"
    )
    site.write("kitchen.md", GOOD_STORY, body=body)
    checked = check(site, "--json")
    assert checked.returncode == 0, checked.stderr
    found = [p for p in json.loads(checked.stdout) if p["field"] == "Body"]
    assert [(p["line"], p["severity"]) for p in found] == [(12, "warning"), (14, "warning")]
    assert "javascript: link or source removed" in found[0]["message"]
    done = build(site)
    assert done.returncode == 0, done.stderr
    html = json.loads((site.root / "output/storyloop-manifest.json").read_text())["stories"][0]
    assert html["html"] == "<p><a>a</a></p>\n<p><a>b</a></p>\n<p>plain data: words</p>"
    assert build(site, "--fatal", "warnings").returncode != 0


@pytest.mark.parametrize(
    "path", ["../outside.jpg", "/etc/passwd", "images/../../x.jpg", "C:/x.jpg"]
)
def test_the_engine_refuses_a_manifest_whose_image_leaves_the_content_folder(
    tmp_path: Path, path: str
) -> None:
    """The build never writes such a manifest; one written by hand must not make a channel
    upload a file from elsewhere either."""
    from publisher.errors import ManifestError
    from publisher.manifest import load_manifest

    golden = Path(__file__).with_name("golden") / "manifest.json"
    data = json.loads(golden.read_text("utf-8"))
    story = next(s for s in data["stories"] if s["images"])
    story["images"][0]["path"] = path
    manifest = tmp_path / "storyloop-manifest.json"
    manifest.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ManifestError, match="leaves the content folder"):
        load_manifest(manifest)
