"""Child processes die with their parent, and a port is served by one server only.

``storyloop run`` starts ``storyloop serve`` as a child, and ``serve`` (granian) starts worker
processes. A SIGKILL reaches only the process it is sent to, so without help its children live
on, keep the listening socket and answer on it, and a restart binds beside them. On Linux each
child asks the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere
a thread watches the parent and ends the process when it is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import signal
import socket
import sys
import threading

from publisher.errors import StoryloopError

PARENT_ENV = "STORYLOOP_PARENT_PID"  # set by a parent for the child that must die with it
PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 1.0
log = logging.getLogger(__name__)


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that must not outlive this process."""
    return {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}


def die_with_parent(parent: int | None = None) -> None:
    """End this process when ``parent`` (default: named by ``STORYLOOP_PARENT_PID``) dies.

    Does nothing when no parent is named, so a server started by hand or by systemd runs as
    before. A parent that died before we asked is noticed at once."""
    if parent is None:
        named = os.environ.get(PARENT_ENV, "")
        parent = int(named) if named.isdigit() else None
    if parent is None:
        return
    if not _pdeathsig():
        threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        threading.Event().wait(WATCH_SECONDS)
    os._exit(1)


def ensure_port_free(host: str, port: int) -> None:
    """Fail with one line when something already listens on ``host:port``: granian's workers
    left from a killed server would otherwise share the port with the new one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise StoryloopError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            raise StoryloopError(
                f"{host}:{port} is already in use, perhaps by another storyloop serve or run",
                hint="stop it, or choose another --port",
            ) from None
