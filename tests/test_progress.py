"""A newcomer's first minutes: a large `storyloop build` shows rich progress on a terminal (and
nothing of it on a pipe), and `storyloop run` with the sample settings and no credentials says
once, in one line, that its channels write to the outbox."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

import publisher.cli  # noqa: F401  (the command modules are imported through it, in order)
from channels.base import ChannelContext
from publisher import settings as settings_mod
from publisher.adapters import open_channel
from publisher.commands.engine import _say_outboxes
from tests.conftest import ROOT
from tests.ptykit import run

STORYLOOP = str(Path(sys.executable).parent / "storyloop")


def test_build_shows_files_read_and_written_on_a_terminal_only(tmp_path: Path) -> None:
    argv = [STORYLOOP, "build", "--output", str(tmp_path / "shown")]
    shown = run(argv, cwd=ROOT, terminal=True)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    read = re.findall(r"reading content: (\d+) files", shown.stderr)
    written = re.findall(r"writing pages: (\d+) files", shown.stderr)
    assert read and int(read[-1]) >= len(list((ROOT / "content" / "stories").glob("*.md"))), (
        shown.stderr
    )
    assert written and int(written[-1]) > 0, shown.stderr
    piped = run([*argv[:-1], str(tmp_path / "piped")], cwd=ROOT, terminal=False)
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert "reading content" not in piped.stderr and "writing pages" not in piped.stderr
    assert "\x1b" not in piped.stderr


def test_run_without_credentials_says_outbox_mode_once_not_per_channel(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in list(os.environ):
        if name.startswith("STORYLOOP_"):
            monkeypatch.delenv(name)
    shutil.copy(ROOT / "pelicanconf.py", tmp_path / "pelicanconf.py")
    settings = settings_mod.load(tmp_path / "pelicanconf.py")
    assert len(settings.channels) > 1
    with caplog.at_level(logging.WARNING):
        _say_outboxes(settings)
        context = ChannelContext(var_dir=settings.var_dir, content_dir=settings.content_path)
        for name in settings.channels:  # what the engine then opens, one by one
            open_channel(name, settings, context)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"outbox mode for {len(settings.channels)} of ")
    assert "storyloop channels" in lines[0]
    assert [r.getMessage() for r in caplog.records if "no credentials" in r.getMessage()] == []
