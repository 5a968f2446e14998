"""No orphan servers: a SIGKILL of ``storyloop serve`` or ``storyloop run`` takes their children
(granian's workers, the site server) with them, and a second server on a served port fails with
one clear line instead of binding beside the first."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port, wait_for_port
from tests.engine.enginekit import write_manifest, write_settings

pytestmark = pytest.mark.slow


def storyloop(config: Path, *args: str) -> subprocess.Popen[str]:
    """A storyloop command in its own process group (so a test can clean up after main's code)."""
    argv = [sys.executable, "-c", "from publisher.cli import main; main()", "--config", str(config)]
    return subprocess.Popen(
        [*argv, *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def answering(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def silent_within(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not answering(port):
            return True
        time.sleep(0.1)
    return False


def site(tmp_path: Path, port: int) -> Path:
    settings = write_settings(
        tmp_path / "site",
        db_url="sqlite:///var/storyloop.db",
        sweep_seconds=0.5,
        tracking={"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"},
    )
    write_manifest(settings.root, [])
    return settings.source


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(stat[1]) == pid:
            found.append(int(entry.name))
    return found


def kill_group(process: subprocess.Popen[str]) -> None:
    """Whatever is left of the command's process group (orphans included, on main's code)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.timeout(120)
def test_sigkill_of_serve_takes_its_granian_workers_with_it(tmp_path: Path) -> None:
    port = free_port()
    server = storyloop(site(tmp_path, port), "serve", "--workers", "2")
    try:
        wait_for_port(port, timeout=60)
        assert answering(port)
        assert len(children_of(server.pid)) >= 2
        server.send_signal(signal.SIGKILL)  # the main process only, as the OOM killer would
        server.wait(timeout=10)
        assert silent_within(port, 10), "granian workers still answer after serve was killed"
    finally:
        kill_group(server)


@pytest.mark.timeout(120)
def test_sigkill_of_run_takes_the_site_server_with_it_and_run_takes_host_and_port(
    tmp_path: Path,
) -> None:
    configured, port = free_port(), free_port()
    engine = storyloop(
        site(tmp_path, configured), "run", "--host", "127.0.0.1", "--port", str(port)
    )
    try:
        wait_for_port(port, timeout=60)
        assert answering(port) and not answering(configured)
        engine.send_signal(signal.SIGKILL)
        engine.wait(timeout=10)
        assert silent_within(port, 10), "the site server outlived a killed `storyloop run`"
    finally:
        kill_group(engine)


@pytest.mark.timeout(120)
def test_a_second_server_on_a_served_port_fails_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = site(tmp_path, port)
    first = storyloop(config, "serve")
    try:
        wait_for_port(port, timeout=60)
        for args in (["serve"], ["run"]):
            second = storyloop(config, *args)
            try:
                _out, err = second.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(second.pid, signal.SIGKILL)
                second.wait()
                pytest.fail(f"`storyloop {args[0]}` started beside the server on a served port")
            assert second.returncode == 1, err
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "already in use" in lines[0], err
            assert "Traceback" not in err
        assert answering(port)
    finally:
        kill_group(first)
