"""The click journal: one append-only JSON-lines file per tracker process under ``var/journal/``.

Each click is written and flushed to the operating system before the 302 goes out, so a tracker
killed at any moment (even SIGKILL) loses no click it answered; only a power loss can lose the
last moments, unless ``journal_fsync`` is on. The writer holds an exclusive ``flock`` on its file
for as long as it lives: ingest knows a file whose lock it can take belongs to nobody any more.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PATTERN = "clicks-*.jsonl"


def journal_dir(var_dir: Path) -> Path:
    return var_dir / "journal"


@dataclass(frozen=True)
class Click:
    id: str
    code: str
    at: float  # seconds since the epoch, UTC
    kind: str  # reader | bot | head
    agent: str | None
    reader: str | None
    referrer_host: str | None

    def line(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "code": self.code,
                "at": self.at,
                "kind": self.kind,
                "agent": self.agent,
                "reader": self.reader,
                "ref": self.referrer_host,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Click:
        return cls(
            id=str(data["id"]),
            code=str(data["code"]),
            at=float(data["at"]),
            kind=str(data["kind"]),
            agent=data.get("agent"),
            reader=data.get("reader"),
            referrer_host=data.get("ref"),
        )


class Journal:
    """This process's journal file, opened on first use (after granian forks its workers)."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._file: IO[str] | None = None
        self._pid = 0
        self._prefix = ""
        self._counter = 0

    def _open(self) -> IO[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._prefix = secrets.token_hex(6)
        name = f"clicks-{socket.gethostname()}-{self._pid}-{self._prefix}.jsonl"
        handle = open(self.directory / name, "a", encoding="utf-8")  # noqa: SIM115
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file = handle
        return handle

    def new_click_id(self, code: str) -> str:
        if self._file is None or self._pid != os.getpid():
            self._open()
        self._counter += 1
        return f"{code}.{self._prefix}{self._counter:x}"

    def append(self, click: Click) -> None:
        handle = self._file if self._pid == os.getpid() and self._file else self._open()
        handle.write(click.line() + "\n")
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def code_of(click_id: str) -> str:
    return click_id.split(".", 1)[0]


def now() -> float:
    return time.time()


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob(PATTERN)) if directory.is_dir() else []


def writer_gone(path: Path) -> bool:
    """True when no process holds the file's lock (its tracker has stopped or died)."""
    try:
        with open(path, "rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return True
    except FileNotFoundError:
        return False


def read_lines(path: Path, offset: int, limit: int) -> Iterator[tuple[list[bytes], int]]:
    """Complete lines from ``offset`` in chunks of about ``limit`` bytes, with the end offset."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        pending = b""
        while chunk := handle.read(limit):
            data = pending + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                pending = data
                continue
            pending = data[cut + 1 :]
            offset += cut + 1
            yield data[:cut].split(b"\n"), offset
