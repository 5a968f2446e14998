"""``storyloop run`` as a real process: serves the site, publishes on time, re-plans when the
manifest changes, and stops cleanly (with its server) on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from publisher import ledger
from tests.conftest import ROOT, free_port, wait_for_port
from tests.engine.enginekit import story, write_manifest, write_settings


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{path} did not appear")


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_serves_publishes_on_time_replans_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    root = tmp_path / "site"
    settings = write_settings(
        root,
        db_url="sqlite:///var/storyloop.db",
        sweep_seconds=0.5,
        tracking={"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
    )
    now = datetime.now(UTC)
    first = story("first", now + timedelta(seconds=3))
    write_manifest(root, [first, story("old", now - timedelta(hours=8))])
    (root / "output" / "index.html").write_text("<h1>Cedar &amp; Clay</h1>", encoding="utf-8")
    outbox = settings.var_dir / "outbox" / "outbox"
    argv = [sys.executable, "-c", "from publisher.cli import main; main()"]
    proc = subprocess.Popen(
        [*argv, "--config", str(settings.source), "run"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, timeout=30)
        assert "Cedar" in requests.get(f"http://127.0.0.1:{port}/", timeout=5).text
        first_id = ledger.delivery_id("first", "outbox", None)
        wait_for(outbox / f"{first_id}.json")
        sent_at = datetime.now(UTC)
        assert sent_at >= first.publish_at
        assert "/go/" in (outbox / f"{first_id}.txt").read_text(encoding="utf-8")

        write_manifest(root, [first, story("added", datetime.now(UTC) + timedelta(seconds=1))])
        wait_for(outbox / f"{ledger.delivery_id('added', 'outbox', None)}.json")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "engine stopped" in err
    assert not (outbox / f"{ledger.delivery_id('old', 'outbox', None)}.json").exists()
    deadline = time.monotonic() + 10
    while not port_closed(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_closed(port), "the site server outlived the engine"
