"""The click journal: one append-only JSON-lines file per tracker process under ``var/journal/``.

Each click is in the operating system's hands before the 302 goes out, so a tracker killed at
any moment (even SIGKILL) loses no click it answered; only a power loss can lose the last
moments, unless ``journal_fsync`` is on. The writer holds an exclusive ``flock`` on its file for
as long as it lives: ingest knows a file whose lock it can take belongs to nobody any more.

A line is copied into a shared memory map of the file, whose disk blocks were reserved ahead
with ``posix_fallocate``: once copied, it is in the kernel's page cache, as after a ``write``,
but the hot path makes no system call and never lets go of the GIL there (letting go of it,
as ``os.write`` does, hands the interpreter to the server's other threads and costs the
redirect a third of its speed). So a file ends in zero bytes past its last line until they are
written: readers skip them (:func:`read_lines`, :func:`data_end`), and a clean close cuts
them off. A byte is written once and never rewritten, so a zero inside a line only means its
copy is still under way.

A reservation that fails (a full disk) never fails the redirect: nothing is written, the line
is kept in memory (up to ``BACKLOG`` lines) until a reservation succeeds again; failures are
counted, logged at most once a minute, and reported by the tracker's ``/healthz``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import mmap
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
FIRST_RESERVE = 4096  # bytes a new journal file reserves; each reservation doubles, up to
MAX_RESERVE = 1 << 20  # this, so a quiet tracker's file stays small and a busy one rarely asks
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
    """This process's journal file, opened on first use (in each granian worker process), and
    written through a memory map of its reserved blocks (see the module's notes)."""

    def __init__(self, directory: Path, *, fsync: bool = False) -> None:
        self.directory = directory
        self.fsync = fsync
        self._fd = -1
        self._pid = 0
        self._prefix = secrets.token_hex(6)
        self._counter = 0
        self._map: mmap.mmap | None = None
        self._end = 0  # where our lines end in the file; zero bytes follow, up to _reserved
        self._reserved = 0
        self._backlog: deque[bytes] = deque(maxlen=BACKLOG)
        self._kept = 0  # bytes in the backlog
        self.failed_writes = 0
        self.dropped = 0  # clicks lost because the backlog was full
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self._logged_at = 0.0

    def _this_process(self) -> None:
        """A forked child makes its own ids and its own file; the parent's are not its own."""
        if self._pid != _PID:
            self._pid = _PID
            self._fd, self._map, self._end, self._reserved = -1, None, 0, 0
            self._prefix = secrets.token_hex(6)
            self._counter = 0
            self._backlog.clear()
            self._kept = 0

    def _open(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"clicks-{socket.gethostname()}-{self._pid}-{self._prefix}.jsonl"
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC  # a writable map needs a readable descriptor
        fd = os.open(self.directory / name, flags, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._end, self._reserved = os.fstat(fd).st_size, 0  # a reopened file was cut on close
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
        self,
        code: str,
        kind: str,
        agent: str | None,
        reader: str | None,
        host: str | None,
        at: float | None = None,
    ) -> str:
        """Journal one click and return its id: the hot path of ``/go``, so no json.dumps.

        ``code`` is [0-9A-Za-z], ``agent`` one of our bot names, ``reader`` hex and ``host``
        a cleaned host name, so none of them needs JSON escaping. ``at`` (now, if not given) is
        written to the microsecond, as precise as the clock it comes from.
        """
        if self._pid != _PID:
            self._this_process()
        self._counter += 1
        click_id = f"{code}.{self._prefix}{self._counter:x}"
        line = (
            f'{{"id":"{click_id}","code":"{code}","at":{time.time() if at is None else at:.6f},'
            f'"kind":"{kind}",'
            f'"agent":{_quoted(agent)},"reader":{_quoted(reader)},"ref":{_quoted(host)}}}\n'
        )
        self._append(line.encode())
        return click_id

    def append(self, click: Click) -> None:
        self._append((click.line() + "\n").encode())

    def _append(self, line: bytes) -> None:
        """Write one line (after any kept back), or keep it back: never raises."""
        try:
            if self._fd < 0 or self._pid != _PID:
                self._descriptor()
            if self._backlog:  # room first: a full disk must not cost a join per click
                self._room(self._end + self._kept + len(line))
                self._write(b"".join(self._backlog) + line)
                self._recovered()
            else:
                self._write(line)
        except OSError as exc:
            self._failed(exc, line)

    def _write(self, data: bytes) -> None:
        start = self._end
        end = start + len(data)
        self._room(end)[start:end] = data
        self._end = end
        if self.fsync:
            os.fsync(self._fd)  # writes back the map's dirty pages too

    def _room(self, end: int) -> mmap.mmap:
        """The map, with disk blocks reserved up to at least ``end``; raises OSError (ENOSPC)
        having changed nothing we rely on."""
        if self._map is not None and end <= self._reserved:
            return self._map
        step = min(max(self._reserved, FIRST_RESERVE), MAX_RESERVE)
        size = max(self._reserved + step, -(-end // mmap.PAGESIZE) * mmap.PAGESIZE)
        _allocate(self._fd, self._reserved, size - self._reserved)
        if self._map is None:
            self._map = mmap.mmap(self._fd, size)
        else:
            self._map.resize(size)
        self._reserved = size
        return self._map

    def _failed(self, exc: OSError, line: bytes) -> None:
        if len(self._backlog) == self._backlog.maxlen:
            self.dropped += 1
            self._kept -= len(self._backlog[0])
        self._backlog.append(line)
        self._kept += len(line)
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
        self._kept = 0
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
        """Unmap and cut the file back to its lines (no zero bytes left for readers to skip)."""
        if self._fd >= 0 and self._pid == _PID:
            if self._map is not None:
                self._map.close()
            os.ftruncate(self._fd, self._end)
            os.close(self._fd)
        self._fd, self._map, self._reserved = -1, None, 0


def _allocate(fd: int, offset: int, length: int) -> None:
    """Give the file real disk blocks for these bytes, so touching them through the map can never
    fault for want of space: ``posix_fallocate``, or zeros written where the system has none
    (macOS)."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, offset, length)
    else:
        os.pwrite(fd, bytes(length), offset)


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


def data_end(path: Path) -> int:
    """Where the file's lines end: its size without the zero bytes its writer reserved."""
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - MAX_RESERVE)
            handle.seek(start)
            kept = handle.read(end - start).rstrip(b"\0")
            if kept:
                return start + len(kept)
            end = start
    return 0


def read_lines(
    path: Path, offset: int, limit: int, *, live: bool = True
) -> Iterator[tuple[list[bytes], int]]:
    """Complete lines from ``offset`` in chunks of about ``limit`` bytes, with the end offset.

    Zero bytes before a line are reserved space something was appended after, and are dropped.
    While the writer lives (``live``), a line with a zero byte inside is still being copied:
    reading stops before it, to take it whole next time. A dead writer's such line is yielded
    as it is (it was cut off by the writer's death, before any 302 went out for it)."""
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
            raw = data[:cut].split(b"\n")
            lines = raw
            if data.find(b"\0", 0, cut) >= 0:
                lines = [line.lstrip(b"\0") for line in raw]
                if live:
                    for i, line in enumerate(lines):
                        if b"\0" in line:
                            if i:
                                yield lines[:i], offset + sum(len(x) + 1 for x in raw[:i])
                            return
            offset += cut + 1
            yield lines, offset
