"""Writing files so that a reader, or a crash, never sees half of one.

The one implementation lives in :mod:`channels.files`, since the outbox writes its files the
same way and ``channels`` may not import the engine; the engine imports it from here."""

from __future__ import annotations

from channels.files import write_atomically

__all__ = ["write_atomically"]
