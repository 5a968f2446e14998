"""A warm rebuild after one story is edited: that story's page is written again, every other
file is left as it was (same inode, same mtime), the story pages whose inputs did not change are
not even rendered, and the output is byte for byte what a cold build of the same content gives."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from publisher import writer
from tests.test_large_build import build, story

STORIES = 30  # dates repeat (28 days): stories of the same date must keep one order


def stats(output: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(output)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(output.rglob("*"))
        if p.is_file()
    }


def tree(output: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(output)): p.read_bytes() for p in sorted(output.rglob("*")) if p.is_file()
    }


@pytest.fixture
def content(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    (folder / "stories").mkdir(parents=True)
    for i in range(STORIES):
        (folder / "stories" / f"kitchen-{i}.md").write_text(story(i), encoding="utf-8")
    return folder


def test_a_warm_rebuild_writes_only_the_edited_page_and_gives_the_cold_build_s_bytes(
    content: Path, tmp_path: Path
) -> None:
    output, cache = tmp_path / "warm", tmp_path / "cache"
    caching = {"CACHE_CONTENT": True, "CACHE_PATH": str(cache), "LOAD_CONTENT_CACHE": True}
    # a cold build that fills the cache without loading it, as the build benchmark's is
    first = build(content, output, **{**caching, "LOAD_CONTENT_CACHE": False})
    assert first.returncode == 0, first.stdout + first.stderr
    assert (cache / writer.KEYS_NAME).is_file()
    before = stats(output)

    edited = content / "stories" / "kitchen-3.md"
    edited.write_text(edited.read_text("utf-8") + "\nThe sink moved to the window.\n", "utf-8")
    again = build(content, output, **caching)
    assert again.returncode == 0, again.stdout + again.stderr
    skipped = re.search(r"pages: (\d+) story pages unchanged", " ".join(again.stdout.split()))
    assert skipped and int(skipped[1]) == STORIES - 1, again.stdout
    # the manifest is updated in place: only the edited story's line is encoded again
    assert f"manifest: 1 encoded, {STORIES - 1} copied" in " ".join(again.stdout.split())

    after = stats(output)
    # Pelican copies its theme's static files in every build (its static generator, not ours)
    changed = {n for n in after if after[n] != before.get(n) and not n.startswith("theme/")}
    feeds = {"feeds/all.atom.xml", "feeds/stories.atom.xml"}  # they carry every story's body
    assert changed == {"stories/kitchen-3.html", "storyloop-manifest.json", *feeds}
    for name in ["stories/kitchen-3.html", *feeds]:
        assert "The sink moved to the window." in (output / name).read_text("utf-8")
    assert after["stories/kitchen-5.html"] == before["stories/kitchen-5.html"]
    assert after["index.html"] == before["index.html"]

    cold = tmp_path / "cold"
    done = build(content, cold)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree(output) == tree(cold)


def test_a_page_whose_file_was_touched_or_removed_is_rendered_again(
    content: Path, tmp_path: Path
) -> None:
    output, cache = tmp_path / "warm", tmp_path / "cache"
    caching = {"CACHE_CONTENT": True, "CACHE_PATH": str(cache), "LOAD_CONTENT_CACHE": True}
    assert build(content, output, **caching).returncode == 0
    page = output / "stories" / "kitchen-4.html"
    good = page.read_bytes()
    page.write_bytes(b"spoiled by hand")
    (output / "stories" / "kitchen-6.html").unlink()
    os.utime(output / "stories" / "kitchen-8.html", ns=(1, 1))
    again = build(content, output, **caching)
    assert again.returncode == 0, again.stdout + again.stderr
    assert page.read_bytes() == good
    assert (output / "stories" / "kitchen-6.html").is_file()
    skipped = re.search(r"pages: (\d+) story pages unchanged", " ".join(again.stdout.split()))
    assert skipped and int(skipped[1]) == STORIES - 3, again.stdout


def test_the_manifest_is_left_alone_when_unchanged_and_encoded_again_when_touched(
    content: Path, tmp_path: Path
) -> None:
    output, cache = tmp_path / "warm", tmp_path / "cache"
    caching = {"CACHE_CONTENT": True, "CACHE_PATH": str(cache), "LOAD_CONTENT_CACHE": True}
    assert build(content, output, **caching).returncode == 0
    manifest = output / "storyloop-manifest.json"
    good, before = manifest.read_bytes(), stats(output)["storyloop-manifest.json"]
    again = build(content, output, **caching)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"manifest: {STORIES} unchanged, not written" in " ".join(again.stdout.split())
    assert stats(output)["storyloop-manifest.json"] == before
    # a manifest written by something else since: no line of it is trusted, each is encoded
    manifest.write_bytes(good.replace(b"terrazzo", b"concrete"))
    third = build(content, output, **caching)
    assert third.returncode == 0, third.stdout + third.stderr
    assert f"manifest: {STORIES} encoded, 0 copied" in " ".join(third.stdout.split())
    assert manifest.read_bytes() == good


def build_wide(content: Path, output: Path, **settings: object) -> subprocess.CompletedProcess[str]:
    """:func:`build` with log lines wide enough that no message is wrapped."""
    os.environ["COLUMNS"], before = "400", os.environ.get("COLUMNS")
    try:
        return build(content, output, **settings)
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def checks_from_cache(done: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    found = re.search(r"checks: (\d+) of (\d+) from the cache", done.stdout)
    assert found, done.stdout + done.stderr
    return int(found[1]), int(found[2])


def pictured(content: Path) -> Path:
    """kitchen-7 with a picture of 40 x 30 pixels: the picture's path."""
    (content / "images").mkdir()
    photo = content / "images" / "sink.png"
    Image.new("RGB", (40, 30), (90, 120, 40)).save(photo)
    story = content / "stories" / "kitchen-7.md"
    text = story.read_text("utf-8").replace("Summary:", "Image: images/sink.png\nSummary:")
    story.write_text(text.replace("Summary:", "Image-Alt: The sink\nSummary:", 1), "utf-8")
    return photo


def test_a_picture_replaced_by_one_of_another_size_renders_its_story_again(
    content: Path, tmp_path: Path
) -> None:
    """What the plugin reads of the picture itself (its size) is in the page's key, though
    neither the story's file nor the settings changed."""
    output, cache = tmp_path / "warm", tmp_path / "cache"
    caching = {"CACHE_CONTENT": True, "CACHE_PATH": str(cache), "LOAD_CONTENT_CACHE": True}
    photo = pictured(content)
    assert build(content, output, **{**caching, "LOAD_CONTENT_CACHE": False}).returncode == 0
    page = output / "stories" / "kitchen-7.html"
    assert 'width="40" height="30"' in page.read_text("utf-8")

    Image.new("RGB", (80, 60), (90, 120, 40)).save(photo)
    again = build(content, output, **caching)
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'width="80" height="60"' in page.read_text("utf-8")
    cold = tmp_path / "cold"
    assert build(content, cold).returncode == 0
    assert tree(output) == tree(cold)


def test_unchanged_stories_are_not_checked_again_and_a_changed_fact_is_still_caught(
    content: Path, tmp_path: Path
) -> None:
    output, cache = tmp_path / "warm", tmp_path / "cache"
    caching = {"CACHE_CONTENT": True, "CACHE_PATH": str(cache), "LOAD_CONTENT_CACHE": True}
    photo = pictured(content)
    first = build_wide(content, output, **{**caching, "LOAD_CONTENT_CACHE": False})
    assert first.returncode == 0, first.stdout + first.stderr
    assert checks_from_cache(first) == (0, STORIES)
    again = build_wide(content, output, **caching)
    assert again.returncode == 0, again.stdout + again.stderr
    assert checks_from_cache(again) == (STORIES, STORIES)

    # the edited story is checked again: its new error is found
    edited = content / "stories" / "kitchen-3.md"
    good = edited.read_text("utf-8")
    edited.write_text(good.replace("Store: berlin-1", "Store: nowhere-9"), "utf-8")
    failed = build_wide(content, output, **caching)
    assert failed.returncode != 0
    assert "kitchen-3.md:9: Store: unknown store 'nowhere-9'" in failed.stdout + failed.stderr
    edited.write_text(good, "utf-8")

    # another file that takes an unchanged story's slug: the check across files still runs
    twin = content / "stories" / "twin.md"
    twin.write_text(story(5), "utf-8")
    failed = build_wide(content, output, **caching)
    assert failed.returncode != 0
    assert "duplicate slug 'kitchen-5'" in failed.stdout + failed.stderr
    twin.unlink()

    # the picture the unchanged story names is gone: its check reads the folder again
    photo.unlink()
    failed = build_wide(content, output, **caching)
    assert failed.returncode != 0
    assert "kitchen-7.md:10: Image: file not found: images/sink.png" in failed.stdout
    Image.new("RGB", (40, 30), (90, 120, 40)).save(photo)

    # a rule from the settings changed, no story touched: every story is checked against it
    xiamen = {"STORYLOOP_REGIONS": {"xiamen": "Xiamen"}}
    failed = build_wide(content, output, **caching, **xiamen)
    assert failed.returncode != 0
    unknown = re.findall(r"kitchen-\d+\.md:\d+: Region: unknown region 'berlin'", failed.stdout)
    assert len(unknown) == STORIES, failed.stdout + failed.stderr

    # and after all that, the warm output is still what a cold build gives
    done = build_wide(content, output, **caching)
    assert done.returncode == 0, done.stdout + done.stderr
    cold = tmp_path / "cold"
    assert build(content, cold).returncode == 0
    assert tree(output) == tree(cold)


def test_a_listing_is_rendered_again_only_when_what_it_shows_of_a_story_changed(
    content: Path, tmp_path: Path
) -> None:
    output, cache = tmp_path / "warm", tmp_path / "cache"
    caching = {"CACHE_CONTENT": True, "CACHE_PATH": str(cache), "LOAD_CONTENT_CACHE": True}
    assert build(content, output, **{**caching, "LOAD_CONTENT_CACHE": False}).returncode == 0
    before = stats(output)
    listings = [n for n in before if re.match(r"(stories/)?index\d*\.html$|regions/", n)]
    assert len(listings) >= 6, listings

    # the body of a story that gives its summary: no listing shows it, none is rendered
    edited = content / "stories" / "kitchen-3.md"
    edited.write_text(edited.read_text("utf-8") + "\nThe sink moved.\n", "utf-8")
    again = build_wide(content, output, **caching)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "pages: 7 listings unchanged, not rendered" in again.stdout
    assert {n: stats(output)[n] for n in listings} == {n: before[n] for n in listings}

    # its title, which every listing of it shows: they are rendered again, as a cold build's
    edited.write_text(edited.read_text("utf-8").replace("Kitchen 3", "Scullery 3", 1), "utf-8")
    third = build_wide(content, output, **caching)
    assert third.returncode == 0, third.stdout + third.stderr
    titled = {n for n in listings if "Scullery 3" in (output / n).read_text("utf-8")}
    assert {p.split("/")[0] for p in titled} == {"index3.html", "stories", "regions"}, titled
    # the site's subtitle changed in the settings: on every page, no story's field
    subtitle = {"SITESUBTITLE": "Kitchens, made again"}
    fourth = build_wide(content, output, **caching, **subtitle)
    assert fourth.returncode == 0, fourth.stdout + fourth.stderr
    assert "Kitchens, made again" in (output / "index2.html").read_text("utf-8")
    # and a region's name: on its page, and in what the plugin computed for its stories
    named = {"xiamen": "厦门 Xiamen", "shanghai": "上海 Shanghai", "berlin": "Berlin-Mitte"}
    regions = {"STORYLOOP_REGIONS": named, **subtitle}
    fifth = build_wide(content, output, **caching, **regions)
    assert fifth.returncode == 0, fifth.stdout + fifth.stderr
    assert "Berlin-Mitte" in (output / "regions" / "berlin.html").read_text("utf-8")
    cold = tmp_path / "cold"
    assert build(content, cold, **regions).returncode == 0
    assert tree(output) == tree(cold)
