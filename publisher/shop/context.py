"""What every redemption path shares (till, API, CLI, CSV), read once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from publisher.errors import SettingsError
from publisher.settings import Settings
from publisher.shop.offers import OfferBook
from publisher.shop.redeem import REFERRAL_REASONS, Reason
from publisher.shop.stores import Store, stores_of
from publisher.tracking import referrals
from publisher.tracking.links import offer_prefix

READER_COOKIE = "sl_reader"
CLICK_COOKIE = "sl_cid"


@dataclass
class Shop:
    stores: dict[str, Store]
    book: OfferBook
    prefix: str
    allowed: frozenset[Reason]  # refusals the owner lets the till accept with a warning
    undo_window: timedelta
    https: bool
    referral_rules: referrals.Rules | None = None  # None: no referral codes handed out

    @classmethod
    def from_settings(cls, settings: Settings) -> Shop:
        stores = stores_of(settings)
        conf = settings.engine.shop
        allowed: set[Reason] = set()
        for name in conf.accept_with_warning:
            try:
                reason = Reason(name)
            except ValueError:
                known = ", ".join(
                    r.value for r in Reason if r not in NEVER_ALLOWED | REFERRAL_REASONS
                )
                raise SettingsError(
                    f"{settings.source}: STORYLOOP shop: accept_with_warning: unknown {name!r} "
                    f"(expected some of: {known})"
                ) from None
            if reason in NEVER_ALLOWED:
                raise SettingsError(
                    f"{settings.source}: STORYLOOP shop: accept_with_warning: {name!r} "
                    "cannot be accepted (the code does not exist)"
                )
            if reason in REFERRAL_REASONS:
                raise SettingsError(
                    f"{settings.source}: STORYLOOP shop: accept_with_warning: {name!r} "
                    "cannot be accepted (caps and self-referral are always refused)"
                )
            allowed.add(reason)
        minutes = conf.undo_minutes
        return cls(
            stores=stores,
            book=OfferBook(settings.manifest_path, stores),
            prefix=offer_prefix(settings),
            allowed=frozenset(allowed),
            undo_window=timedelta(minutes=minutes),
            https=settings.tracking_base_url.startswith("https://"),
            referral_rules=referrals.rules_of(settings),
        )


NEVER_ALLOWED = frozenset({Reason.MISTYPED, Reason.UNKNOWN})


def store_for(shop: Shop, store: str | None) -> Store | None:
    """The store a CLI, API or CSV redemption names; the only one when there is one; a
    nameless one when none are configured (every offer is then valid anywhere)."""
    if store:
        return shop.stores.get(store)
    if len(shop.stores) == 1:
        return next(iter(shop.stores.values()))
    if not shop.stores:
        return Store("", "", None, None, "en", "UTC")
    return None
