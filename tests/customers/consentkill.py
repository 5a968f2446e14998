"""Mastodon and Bluesky adapters whose worker SIGKILLs itself right after a delete succeeded,
before the removal's outcome reaches the database (the death ``tests.pds.killing`` places:
one file ``<network>-after-delete.<n>`` per death, in ``STORYLOOP_TEST_KILL_DIR``)."""

from __future__ import annotations

from channels.base import Receipt, Removal
from channels.bluesky import Bluesky
from channels.mastodon import Mastodon
from tests.pds.killing import die_if_asked


class KilledMastodon(Mastodon):
    def delete(self, receipt: Receipt) -> Removal:
        removal = super().delete(receipt)
        die_if_asked("mastodon-after-delete", receipt.remote_id)
        return removal


class KilledBluesky(Bluesky):
    def delete(self, receipt: Receipt) -> Removal:
        removal = super().delete(receipt)
        die_if_asked("bluesky-after-delete", receipt.remote_id.rsplit("/", 1)[-1])
        return removal
