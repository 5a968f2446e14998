"""The click journal: one append-only JSON-lines file per tracker process under ``var/journal/``.

Each click is written and flushed to the operating system before the 302 goes out, so a tracker
killed at any moment (even SIGKILL) loses no click it answered; only a power loss can lose the
last moments, unless ``journal_fsync`` is on. The writer holds an exclusive ``flock`` on its file
for as long as it lives: ingest knows a file whose lock it can take belongs to nobody any more.

A write that fails (a full disk) never fails the redirect: the line is cut back off the file, so
no torn line is left for the next one to be glued to, and kept in memory (up to ``BACKLOG``
lines) until a write succeeds again; failures are counted, logged at most once a minute, and
reported by the tracker's ``/healthz``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PATTERN = "clicks-*.jsonl"
BACKLOG = 100_000  # clicks kept in memory while the disk refuses them (about 20 MB)
LOG_EVERY = 60.0  # seconds between two log lines about failing writes
log = logging.getLogger(__name__)

_PID = os.getpid()  # kept current by a fork hook, so the hot path makes no getpid() call


def _forked() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_forked)


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
        self._prefix = secrets.token_hex(6)
        self._counter = 0
        self._size = 0  # bytes of whole lines in our file: where a failed write is cut back to
        self._torn = False  # a cut failed: the next write starts on a new line
        self._backlog: deque[bytes] = deque(maxlen=BACKLOG)
        self.failed_writes = 0
        self.dropped = 0  # clicks lost because the backlog was full
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self._logged_at = 0.0

    def _this_process(self) -> None:
        """A forked child makes its own ids and its own file; the parent's are not its own."""
        if self._pid != _PID:
            self._pid = _PID
            self._fd = -1
            self._prefix = secrets.token_hex(6)
            self._counter = 0
            self._backlog.clear()

    def _open(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"clicks-{socket.gethostname()}-{self._pid}-{self._prefix}.jsonl"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(self.directory / name, flags, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._size = os.fstat(fd).st_size
        self._fd = fd
        return fd

    def _descriptor(self) -> int:
        self._this_process()
        return self._fd if self._fd >= 0 else self._open()

    def new_click_id(self, code: str) -> str:
        self._this_process()
        self._counter += 1
        return f"{code}.{self._prefix}{self._counter:x}"

    def record(
        self, code: str, kind: str, agent: str | None, reader: str | None, host: str | None
    ) -> str:
        """Journal one click and return its id: the hot path of ``/go``, so no json.dumps.

        ``code`` is [0-9A-Za-z], ``agent`` one of our bot names, ``reader`` hex and ``host``
        a cleaned host name, so none of them needs JSON escaping.
        """
        if self._pid != _PID:
            self._this_process()
        self._counter += 1
        click_id = f"{code}.{self._prefix}{self._counter:x}"
        line = (
            f'{{"id":"{click_id}","code":"{code}","at":{time.time()!r},"kind":"{kind}",'
            f'"agent":{_quoted(agent)},"reader":{_quoted(reader)},"ref":{_quoted(host)}}}\n'
        )
        self._append(line.encode())
        return click_id

    def append(self, click: Click) -> None:
        self._append((click.line() + "\n").encode())

    def _append(self, line: bytes) -> None:
        """Write one line (after any kept back), or keep it back: never raises."""
        try:
            fd = self._fd if self._fd >= 0 and self._pid == _PID else self._descriptor()
            if self._backlog:
                self._write(fd, b"".join(self._backlog) + line)
                self._recovered()
            else:
                self._write(fd, line)
        except OSError as exc:
            self._failed(exc, line)

    def _write(self, fd: int, data: bytes) -> None:
        if self._torn:
            data = b"\n" + data
        start = self._size
        try:
            written = os.write(fd, data)
            while written < len(data):  # only on a full disk or a signal; keep the line whole
                written += os.write(fd, data[written:])
            if self.fsync:
                os.fsync(fd)
        except OSError:
            self._cut(fd, start)
            raise
        self._size = start + len(data)
        self._torn = False

    def _cut(self, fd: int, size: int) -> None:
        """Take a partly written line back off the file, so the next line is read whole."""
        try:
            os.ftruncate(fd, size)
        except OSError:
            self._torn = True

    def _failed(self, exc: OSError, line: bytes) -> None:
        if len(self._backlog) == self._backlog.maxlen:
            self.dropped += 1
        self._backlog.append(line)
        self.failed_writes += 1
        self.last_error = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = time.time()
        if now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.error(
                "click journal %s: cannot write (%s); %d click(s) kept in memory, %d lost, "
                "%d failed write(s) so far; links still redirect",
                self.directory,
                self.last_error,
                len(self._backlog),
                self.dropped,
                self.failed_writes,
            )

    def _recovered(self) -> None:
        log.warning(
            "click journal %s: writing again; %d click(s) kept in memory are written",
            self.directory,
            len(self._backlog),
        )
        self._backlog.clear()
        self.failing_since = None
        self._logged_at = 0.0

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` says about this process's journal and the disk it is on."""
        try:
            st = os.statvfs(self.directory)
            free: int | None = st.f_bavail * st.f_frsize
        except OSError:
            free = None
        return {
            "writing": self.failing_since is None,
            "failing_since": self.failing_since,
            "failed_writes": self.failed_writes,
            "kept_in_memory": len(self._backlog),
            "lost": self.dropped,
            "last_error": self.last_error,
            "free_bytes": free,
        }

    def close(self) -> None:
        if self._fd >= 0 and self._pid == _PID:
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
