"""Writing files so that a reader, or a crash, never sees half of one."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_atomically(path: Path, data: bytes | str, *, private: bool = False) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``.

    The temporary name carries the process and thread, so writers running side by side (parallel
    builds, publishing threads) never share one. ``private`` makes the file readable by its owner
    only, from the moment it exists (tokens and sessions).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
    os.replace(tmp, path)
