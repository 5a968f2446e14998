"""Run a real command with its stderr on a pseudo-terminal, the way a person at a shell sees it,
or on a pipe, the way CI and logs see it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Variables with which rich draws on a pipe as on a terminal: a test must not inherit them.
FORCING = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "COLUMNS", "LINES")
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str  # escape sequences removed, carriage returns turned into newlines


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    out = dict(os.environ if env is None else env)
    for name in FORCING:
        out.pop(name, None)
    out["TERM"] = "xterm-256color"
    return out


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    terminal: bool,
    timeout: float = 240,
) -> Done:
    """``argv`` with stdout on a pipe and stderr on a 160-column pty (``terminal``) or a pipe."""
    environment = clean_env(env)
    if not terminal:
        done = subprocess.run(
            argv, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
        )
        return Done(done.returncode, done.stdout, done.stderr)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every copy of the slave is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        os.close(slave)
        out, _ = proc.communicate(timeout=timeout)
        reader.join(timeout=30)
    finally:
        os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    return Done(
        proc.returncode, out.decode("utf-8", "replace"), ESCAPES.sub("", text).replace("\r", "\n")
    )
