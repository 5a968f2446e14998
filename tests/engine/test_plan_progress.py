"""`storyloop plan --apply` shows how many deliveries it has written, of how many, on a terminal;
on a pipe it prints only the plan."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from publisher.settings import Settings
from tests.engine.enginekit import story, write_manifest
from tests.ptykit import run

STORIES = 1100  # several of plan.apply's batches


def test_plan_apply_draws_a_progress_bar_on_a_terminal_only(
    make_site: Callable[..., Settings],
) -> None:
    settings = make_site()
    later = datetime.now(UTC) + timedelta(days=2)
    write_manifest(settings.root, [story(f"s{i}", later) for i in range(STORIES)])
    argv = [
        sys.executable,
        "-c",
        "from publisher.cli import main; main()",
        "--config",
        str(settings.source),
        "plan",
    ]
    shown = run([*argv, "--apply"], cwd=settings.root, terminal=True)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"applied: {STORIES} change(s)" in shown.stdout
    assert re.search(rf"applying the plan .*{STORIES}/{STORIES} deliveries", shown.stderr), (
        shown.stderr[-2000:]
    )
    write_manifest(settings.root, [story(f"t{i}", later) for i in range(STORIES)])
    piped = run([*argv, "--apply"], cwd=settings.root, terminal=False)
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert f"applied: {2 * STORIES} change(s)" in piped.stdout  # 1100 added, 1100 cancelled
    assert "applying" not in piped.stderr and "deliveries" not in piped.stderr
    assert "\x1b" not in piped.stderr
