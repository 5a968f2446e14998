"""The engine's commands as a user types them: plan, publish, status, retry, cancel, resolve."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from publisher import db, ledger
from publisher.cli import main
from publisher.settings import Settings
from tests.conftest import ROOT
from tests.engine.enginekit import story, write_manifest


@pytest.fixture
def site(make_site: Callable[..., Settings]) -> Settings:
    settings = make_site()
    now = datetime.now(UTC)
    write_manifest(
        settings.root,
        [
            story("due", now - timedelta(minutes=5)),
            story("later", now + timedelta(days=2)),
            story("old", now - timedelta(hours=9)),
        ],
    )
    return settings


def sl(settings: Settings, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["--config", str(settings.source), *args])
    assert result.exit_code == code, result.output
    return result.output


def state(settings: Settings, slug: str) -> str:
    engine = db.connect(settings.database_url)
    with engine.connect() as conn:
        row = ledger.get(conn, ledger.delivery_id(slug, "outbox", None))
    engine.dispose()
    assert row is not None, f"no delivery for {slug}"
    return row.state


def test_plan_shows_the_difference_and_apply_writes_it_once(site: Settings) -> None:
    shown = sl(site, "plan")
    assert "Plan: 2 to add, 0 to reschedule, 0 to cancel, 1 missed" in shown
    assert "+ " in shown and "due → outbox" in shown and "past the grace period" in shown
    assert "applied: 3 change(s)" in sl(site, "plan", "--apply")
    again = sl(site, "plan")
    assert (
        "Plan: 0 to add, 0 to reschedule, 0 to cancel, 0 missed, 0 already sent, 3 unchanged."
        in again
    )


def test_publish_due_sends_what_is_due_and_dry_run_writes_nothing(site: Settings) -> None:
    assert "0 due (dry run" in sl(site, "publish", "--due", "--dry-run")
    sl(site, "plan", "--apply")
    dry = sl(site, "publish", "--due", "--dry-run")
    assert "Story due" in dry and "1 due (dry run" in dry
    assert state(site, "due") == "planned"
    assert not (site.var_dir / "outbox").exists()
    assert "publish: 1 sent" in sl(site, "publish", "--due")
    assert state(site, "due") == "sent"
    assert "publish: nothing due" in sl(site, "publish", "--due")
    files = sorted(p.suffix for p in (site.var_dir / "outbox" / "outbox").iterdir())
    assert files == [".json", ".txt"]


def test_publish_without_due_says_how_to_call_it(site: Settings) -> None:
    assert "storyloop publish --due" in sl(site, "publish", code=1)


def test_status_counts_states_and_shows_what_needs_attention(site: Settings) -> None:
    sl(site, "publish", "--due")
    out = sl(site, "status")
    assert "Deliveries: missed 1, planned 1, sent 1" in out
    assert "Next:" in out and "later → outbox" in out
    assert "old → outbox  missed: past the grace period" in out


def test_retry_cancel_and_their_refusals(site: Settings) -> None:
    sl(site, "plan", "--apply")
    old = ledger.delivery_id("old", "outbox", None)
    later = ledger.delivery_id("later", "outbox", None)
    assert "retry done" in sl(site, "retry", old)
    assert state(site, "old") == "planned"
    assert "cancel done" in sl(site, "cancel", later)
    assert state(site, "later") == "cancelled"
    sl(site, "plan", "--apply")
    assert state(site, "later") == "cancelled"
    assert 'no delivery "nope"' in sl(site, "cancel", "nope", code=1)
    sl(site, "publish", "--due")
    assert "is sent: cannot cancel it" in sl(site, "cancel", old, code=1)


def test_resolve_settles_an_unknown_outcome_by_hand(site: Settings) -> None:
    sl(site, "plan", "--apply")
    engine = db.connect(site.database_url)
    now = datetime.now(UTC)
    lease = timedelta(minutes=2)
    with ledger.transaction(engine) as conn:
        [claim] = ledger.claim_due(conn, token="w/1", now=now, lease=lease)
        ledger.mark_sending(conn, claim, now=now, lease=lease)
        ledger.mark_unknown(conn, claim, error="read timed out", now=now, check_at=None)
    engine.dispose()
    assert "exactly one of --sent URL or --resend" in sl(site, "resolve", claim.id, code=1)
    assert "resolve done" in sl(site, "resolve", claim.id, "--sent", "https://t.me/c/42")
    assert state(site, "due") == "sent"
    assert "is sent: cannot resend it" in sl(site, "resolve", claim.id, "--resend", code=1)


def test_db_upgrade_and_resume(site: Settings) -> None:
    assert "database at revision" in sl(site, "db", "upgrade")
    assert "was not paused" in sl(site, "resume", "outbox")
    assert 'No channel named "nope"' in sl(site, "resume", "nope", code=1)


def test_grace_hours_lets_a_demo_send_old_posts_instead_of_missing_them(site: Settings) -> None:
    assert "publish: 2 sent" in sl(site, "publish", "--due", "--grace-hours", "720")
    assert state(site, "old") == "sent"


def test_several_processes_can_migrate_one_database_at_once(site: Settings) -> None:
    argv = [sys.executable, "-c", "from publisher.cli import main; main()"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [*argv, "--config", str(site.source), "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(p.wait(timeout=60), p.stdout.read() if p.stdout else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0], results
    assert all("database at revision" in out for _, out in results)
