"""A full disk does not break links: ``var/journal`` on a small tmpfs mounted for the test.

Every redirect is answered 302 while the disk refuses the journal's writes, no torn line is
left in the file, ``/healthz`` says the journal is failing, and once there is room again the
clicks kept in memory are written and ingested: none is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.tracking.journal import Journal, data_end, journal_dir
from tests.conftest import need
from tests.tracking.trackkit import click_kinds, ingest_now, request, serve_site

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def small_disk(where: Path, size: str = "64k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``; skipped (failed in CI) where mounting is
    impossible (not root, no CAP_SYS_ADMIN)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and shutil.which("mount") is not None
    if mounted:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
        )
        mounted = done.returncode == 0
    need(mounted, "cannot mount a small tmpfs to fill (needs root and CAP_SYS_ADMIN)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file until the disk says no more."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"x" * 512)
    return filler


def journal_lines(folder: Path) -> list[bytes]:
    """The lines in the journal files, without the zero bytes a live writer has reserved."""
    data = b"".join(p.read_bytes()[: data_end(p)] for p in sorted(folder.glob("clicks-*.jsonl")))
    assert not data or data.endswith(b"\n"), "a partial line was left at the end"
    return data.splitlines()


def test_every_redirect_answers_302_on_a_full_disk_and_no_click_is_lost(tmp_path: Path) -> None:
    served = serve_site(tmp_path / "site")
    site = served.site
    code = next(iter(served.links.urls.values())).rsplit("/", 1)[1]
    agent = {"User-Agent": "Mozilla/5.0 (X11; Linux)"}
    try:
        with small_disk(journal_dir(site.settings.var_dir)) as disk:
            assert request(site.port, "GET", f"/go/{code}", agent).status == 302
            filler = fill(disk)
            statuses = [request(site.port, "GET", f"/go/{code}", agent).status for _ in range(300)]
            assert statuses == [302] * 300
            health = json.loads(request(site.port, "GET", "/healthz").body)
            assert health["status"] == "degraded"
            assert health["journal"]["writing"] is False
            assert health["journal"]["failed_writes"] > 0
            assert health["journal"]["last_error"] == "No space left on device"
            kept = health["journal"]["kept_in_memory"]
            lines = journal_lines(disk)
            assert all(json.loads(line)["code"] == code for line in lines)  # none torn
            assert len(lines) + kept == 301

            filler.unlink()
            assert request(site.port, "GET", f"/go/{code}", agent).status == 302
            health = json.loads(request(site.port, "GET", "/healthz").body)
            assert health["journal"]["writing"] is True
            assert health["journal"]["kept_in_memory"] == 0
            assert len(journal_lines(disk)) == 302
            ingest_now(site)
            assert click_kinds(site) == {"reader": 302}
            served.tracker.kill()
    finally:
        served.tracker.kill()
        site.engine.dispose()


def test_a_write_cut_short_by_a_full_disk_is_taken_back_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_disk(tmp_path / "journal", "128k") as disk:
        journal = Journal(disk)
        journal.record("AbCdEf1234", "reader", None, "ab" * 16, "example.com")
        fill(disk)
        caplog.set_level(logging.ERROR, logger="publisher.tracking.journal")
        ids = [journal.record("AbCdEf1234", "reader", None, "cd" * 16, None) for _ in range(200)]
        assert len(set(ids)) == 200
        lines = journal_lines(disk)
        assert 1 < len(lines) < 201  # the page filled up, then a line did not fit
        assert [json.loads(line)["id"] for line in lines[1:]] == ids[: len(lines) - 1]
        assert journal.failed_writes == 201 - len(lines)
        errors = [r for r in caplog.records if "cannot write" in r.getMessage()]
        assert len(errors) == 1, "one line a minute, not one per click"
        assert "No space left on device" in errors[0].getMessage()
        (disk / "filler").unlink()
        journal.record("AbCdEf1234", "reader", None, "ef" * 16, None)
        assert len(journal_lines(disk)) == 202
        journal.close()
