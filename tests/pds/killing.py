"""The Bluesky adapter in a worker that SIGKILLs itself at a chosen point of a publish.

Configured as ``"type": "tests.pds.killing:KilledMidPublish"``. Each file ``<point>.<n>`` in the
folder named by ``STORYLOOP_TEST_KILL_DIR`` is one death at that point: the worker that manages
to delete it writes ``died/<point>.<rkey>`` and SIGKILLs its own process, so exactly as many
workers die as there are files, wherever they run. Points: ``before-create`` (the record key is
noted, createRecord not sent) and ``after-create`` (the server answered createRecord; the
receipt never reaches the ledger).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from channels.base import Receipt
from channels.bluesky import Bluesky

KILL_DIR = "STORYLOOP_TEST_KILL_DIR"


def die_if_asked(point: str, rkey: str) -> None:
    folder = os.environ.get(KILL_DIR)
    if not folder:
        return
    for ticket in sorted(Path(folder).glob(f"{point}.*")):
        try:
            ticket.unlink()
        except FileNotFoundError:  # another worker took this one
            continue
        died = Path(folder) / "died"
        died.mkdir(exist_ok=True)
        (died / f"{point}.{rkey}").write_text(str(os.getpid()), encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)


class KilledMidPublish(Bluesky):
    def _create(self, record: dict[str, Any], rkey: str, thumb: Any) -> Receipt:
        die_if_asked("before-create", rkey)
        receipt = super()._create(record, rkey, thumb)
        die_if_asked("after-create", rkey)
        return receipt
