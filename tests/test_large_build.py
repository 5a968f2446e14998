"""A build large enough that the plugin works beside Pelican: QR codes drawn by a child process
while the content is still being read, and the manifest written by a forked child while the pages
are (``qrcodes.CHILD_THRESHOLD`` and ``pelican_plugin.FORK_THRESHOLD``). What comes out must be
what a small, in-process build gives."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from site_helpers import BIN, MANIFEST, ROOT, SITE_URL, manifest

from publisher import pelican_plugin, qrcodes
from publisher.model import load_manifest

STORIES = max(qrcodes.CHILD_THRESHOLD, pelican_plugin.FORK_THRESHOLD) + 20


def story(i: int) -> str:
    return f"""Title: Kitchen {i}
Date: 2026-03-{1 + i % 28:02d} 10:00
Slug: kitchen-{i}
Lang: en
Category: stories
Region: berlin
Channels: mastodon
Summary: Kitchen number {i}

We kept the terrazzo floor of kitchen {i}.

See [the shop](https://example.com/shop?item={i}).
"""


EXPIRED = """Title: Consent has ended
Date: 2026-03-02 10:00
Slug: consent-ended
Lang: en
Category: testimonials
Customer: Someone
Consent: yes
Consent-Until: 2020-01-01
Rating: 5
Channels: mastodon

Never to be published again.
"""


def build(content: Path, output: Path) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "pelican"), str(content), "-s", "pelicanconf.py", "-o", str(output), "-D"]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("large")
    content = base / "content"
    (content / "stories").mkdir(parents=True)
    (content / "testimonials").mkdir()
    for i in range(STORIES):
        (content / "stories" / f"kitchen-{i}.md").write_text(story(i), encoding="utf-8")
    (content / "testimonials" / "consent-ended.md").write_text(EXPIRED, encoding="utf-8")
    output = base / "output"
    done = build(content, output)
    assert done.returncode == 0, done.stdout + done.stderr
    return content, output, done.stdout + done.stderr


def test_manifest_written_beside_the_pages_has_every_story_complete(
    large: tuple[Path, Path, str],
) -> None:
    content, output, _ = large
    stories = load_manifest(output / MANIFEST).stories
    assert len(stories) == STORIES
    for s in stories:
        source = (content.parent / s.source).read_bytes()
        assert s.content_hash == hashlib.sha256(source).hexdigest()
        assert s.text.startswith(f"We kept the terrazzo floor of {s.slug.replace('-', ' ')}.")
        assert s.url == f"{SITE_URL}/stories/{s.slug}.html"
    assert [(s.publish_at, s.slug) for s in stories] == sorted(
        (s.publish_at, s.slug) for s in stories
    )
    assert not list(output.glob(f".{MANIFEST}*")), "no temporary file left behind"
    assert manifest(output)["version"] == 1


def test_every_story_gets_its_qr_code_and_an_excluded_one_gets_none(
    large: tuple[Path, Path, str],
) -> None:
    _, output, _ = large
    stories = load_manifest(output / MANIFEST).stories
    drawn = {p.name for p in (output / "qr").iterdir()}
    assert drawn == {Path(s.qr or "").name for s in stories}
    assert not any(name.startswith("consent-ended") for name in drawn)
    assert not list((output / "qr").glob(".*.tmp"))


def test_codes_drawn_by_the_child_are_the_ones_drawn_in_process(
    large: tuple[Path, Path, str],
) -> None:
    _, output, _ = large
    for s in load_manifest(output / MANIFEST).stories:
        assert (output / (s.qr or "")).read_bytes() == qrcodes.svg(s.url)


def test_rebuilding_unchanged_content_leaves_the_manifest_untouched(
    large: tuple[Path, Path, str],
) -> None:
    content, output, _ = large
    before = (output / MANIFEST).stat().st_mtime_ns
    done = build(content, output)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (output / MANIFEST).stat().st_mtime_ns == before
    assert not list(output.glob(f".{MANIFEST}*"))


def test_the_large_build_took_the_paths_this_file_is_about(large: tuple[Path, Path, str]) -> None:
    _, _, log = large
    assert "manifest: written by child process" in log
    assert "QR codes: drawn by child process" in log
