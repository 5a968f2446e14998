"""Shared fixtures: real SQLite files, a throwaway PostgreSQL server, the sample site.

On a user's machine a test whose binary is missing is skipped with the reason; in CI
(``CI=true``) every skip is turned into a failure, so CI never passes by skipping.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from glob import glob
from pathlib import Path
from typing import Any

import pelican.log  # noqa: F401  (installs Pelican's logger class; undone just below)
import pytest

# Pelican makes every logger created after its import drop repeated warnings. The engine never
# imports Pelican (tests/test_content.py checks that), but the test processes do, and a test that
# expects a warning must not lose it because another test logged the same words earlier.
logging.setLoggerClass(logging.Logger)

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip when ``condition`` is false, but fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must not skip: {reason}")
    pytest.skip(reason)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if IN_CI and skipped and session.exitstatus == 0:
        session.exitstatus = 1
        if reporter:
            reporter.write_line(f"CI: {skipped} test(s) skipped; a skip counts as a failure in CI")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- PostgreSQL


def pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throwaway cluster in a temp folder, started with initdb/pg_ctl on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="storyloop-pg-"))
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        data = self.dir / "data"
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        assert initdb and pg_ctl
        self._run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        opts += " -c max_connections=200"
        self._run(pg_ctl, "-D", str(data), "-o", opts, "-w", "-l", str(self.dir / "log"), "start")

    def stop(self) -> None:
        pg_ctl = pg_bin("pg_ctl")
        if pg_ctl:
            subprocess.run(
                [*self.prefix, pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.dir, ignore_errors=True)

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    need(
        bool(pg_bin("initdb") and pg_bin("pg_ctl")),
        "PostgreSQL server binaries (initdb, pg_ctl) not found",
    )
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database URL: a SQLite file, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'storyloop.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


# --------------------------------------------------------------------------- browser


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    need(CHROMIUM is not None, "Debian's chromium is not installed (apt-get install chromium)")
    assert CHROMIUM
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """The worker's one sync Playwright: its sync API refuses to start beside a live one in
    the same process, so every browser test of the worker launches Chromium from this one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as started:
        yield started


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


@pytest.fixture
def browser(playwright: Any, chromium_path: str) -> Iterator[Any]:
    """A headless Chromium of the worker's Playwright, closed after the test."""
    chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


def watch_errors(page: Any, errors: list[str]) -> Any:
    """Collect a page's console errors and uncaught exceptions into ``errors``; the page."""

    def on_console(message: Any) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return page


def full_shot(page: Any, path: Path) -> Path:
    """A full-page screenshot at ``path``, after checking the page does not scroll sideways."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= page.viewport_size["width"], (path.name, width)
    return path


@pytest.fixture(scope="session")
def zbarimg_path() -> str:
    """zbarimg, to read QR codes back from a picture as a phone's camera app would."""
    found = shutil.which("zbarimg")
    need(found is not None, "zbarimg is not installed (apt-get install zbar-tools)")
    assert found
    return found


# --------------------------------------------------------------------------- helpers


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")
