"""The reference Bluesky PDS on loopback: start ``pds.js`` with node, talk XRPC to it.

``pds.js`` runs the PLC directory (in memory) and the PDS (SQLite and blobs in a temp folder)
from ``@atproto/dev-env``, installed in this folder by ``npm ci``. It prints one JSON line when
both answer and stops when its standard input closes, so a killed test run leaves no server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "pds.js"
START_TIMEOUT = 60.0
POSTS = "app.bsky.feed.post"


def node() -> str | None:
    return shutil.which("node")


def installed() -> bool:
    return (HERE / "node_modules" / "@atproto" / "dev-env" / "package.json").is_file()


@dataclass(frozen=True)
class Account:
    did: str
    handle: str
    password: str


@dataclass(frozen=True)
class Pds:
    service: str
    plc: str
    account: Account
    startup_seconds: float

    def get(self, nsid: str, **params: str) -> requests.Response:
        return requests.get(f"{self.service}/xrpc/{nsid}", params=params, timeout=10)

    def records(self, repo: str) -> list[dict[str, Any]]:
        """Every post in the repo, through listRecords, page after page."""
        found: list[dict[str, Any]] = []
        cursor = ""
        while True:
            params = {"repo": repo, "collection": POSTS, "limit": "100"}
            if cursor:
                params["cursor"] = cursor
            page = self.get("com.atproto.repo.listRecords", **params)
            page.raise_for_status()
            data = page.json()
            found += data["records"]
            cursor = data.get("cursor") or ""
            if not cursor or not data["records"]:
                return found

    def new_account(self, name: str = "shop") -> Account:
        """A fresh account, so each test counts only its own records."""
        handle = f"{name}-{uuid.uuid4().hex[:8]}.test"
        password = uuid.uuid4().hex
        body = {"handle": handle, "password": password, "email": f"{handle}@example.com"}
        resp = requests.post(
            f"{self.service}/xrpc/com.atproto.server.createAccount", json=body, timeout=10
        )
        resp.raise_for_status()
        return Account(resp.json()["did"], handle, password)


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The line the script prints once both servers answer ("" if none came in time)."""
    line: list[str] = []
    out = proc.stdout
    reader = threading.Thread(target=lambda: line.append(out.readline() if out else ""))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return line[0] if line else ""


@contextmanager
def running_pds() -> Iterator[Pds]:
    """Start PLC + PDS, yield where they answer, stop them (closing stdin) on the way out."""
    folder = Path(tempfile.mkdtemp(prefix="storyloop-pds-"))
    log = folder / "pds.log"
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [node() or "node", str(SCRIPT), str(folder)],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        line = _first_line(proc, START_TIMEOUT)
        if not line:
            proc.kill()
            raise RuntimeError(f"the PDS did not start: {log.read_text(encoding='utf-8')[-2000:]}")
        info = json.loads(line)
        account = Account(info["did"], info["handle"], info["app_password"])
        yield Pds(info["service"], info["plc"], account, time.monotonic() - started)
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        shutil.rmtree(folder, ignore_errors=True)
