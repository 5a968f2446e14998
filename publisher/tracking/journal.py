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
from typing import Any

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
    """This process's journal file, opened on first use (in each granian worker process).

    Lines are written with one unbuffered ``os.write`` on an ``O_APPEND`` descriptor: once it
    returns the click is in the operating system's hands, which a SIGKILL cannot take away.
    """

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._fd = -1
        self._pid = 0
        self._prefix = ""
        self._counter = 0

    def _open(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._prefix = secrets.token_hex(6)
        self._counter = 0
        name = f"clicks-{socket.gethostname()}-{self._pid}-{self._prefix}.jsonl"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(self.directory / name, flags, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd = fd
        return fd

    def _descriptor(self) -> int:
        return self._fd if self._pid == os.getpid() and self._fd >= 0 else self._open()

    def new_click_id(self, code: str) -> str:
        self._descriptor()
        self._counter += 1
        return f"{code}.{self._prefix}{self._counter:x}"

    def record(
        self, code: str, kind: str, agent: str | None, reader: str | None, host: str | None
    ) -> str:
        """Journal one click and return its id: the hot path of ``/go``, so no json.dumps.

        ``code`` is [0-9A-Za-z], ``agent`` one of our bot names, ``reader`` hex and ``host``
        a cleaned host name, so none of them needs JSON escaping.
        """
        fd = self._descriptor()
        self._counter += 1
        click_id = f"{code}.{self._prefix}{self._counter:x}"
        line = (
            f'{{"id":"{click_id}","code":"{code}","at":{time.time()!r},"kind":"{kind}",'
            f'"agent":{_quoted(agent)},"reader":{_quoted(reader)},"ref":{_quoted(host)}}}\n'
        )
        self._write(fd, line.encode())
        return click_id

    def append(self, click: Click) -> None:
        self._write(self._descriptor(), (click.line() + "\n").encode())

    def _write(self, fd: int, data: bytes) -> None:
        written = os.write(fd, data)
        while written < len(data):  # only on a full disk or a signal; keep the line whole
            written += os.write(fd, data[written:])
        if self.fsync:
            os.fsync(fd)

    def close(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = -1


def _quoted(text: str | None) -> str:
    return "null" if text is None else f'"{text}"'


def code_of(click_id: str) -> str:
    return click_id.split(".", 1)[0]


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
