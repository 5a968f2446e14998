"""Stores as the settings describe them (``STORYLOOP["stores"]``), and money in their locale.

A store names its ``currency`` and ``locale``; an amount typed at its till is read with Babel in
that locale (``45,50`` in de_DE, ``¥299`` or ``299.5`` in zh_CN) and shown the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.numbers import NumberFormatError, format_currency, format_decimal, parse_decimal

from publisher.settings import Settings
from publisher.settings import Store as StoreSettings

MAX_AMOUNT = Decimal("1000000000")
_NOT_NUMBER = re.compile(r"[^\d.,'\u00a0\u202f\u2019 ]")
_SPACES = re.compile(r"[\s\u00a0\u202f]")
_SIMPLE_DECIMAL = re.compile(r"\d+[.,]\d{1,2}")


@dataclass(frozen=True)
class Store:
    id: str
    name: str
    region: str | None
    currency: str | None
    locale: str
    timezone: str

    def money(self, minor: int, currency: str | None = None) -> str:
        """``45,50 €`` in de_DE, ``¥299.00`` in zh_CN."""
        return show_money(minor, currency or self.currency or "", self.locale)


def stores_of(settings: Settings) -> dict[str, Store]:
    """The configured stores as the till needs them (read and checked with the settings)."""
    zone = settings.timezone
    return {key: _store(conf, zone) for key, conf in settings.stores.items()}


def _store(conf: StoreSettings, zone: str) -> Store:
    return Store(
        id=conf.id,
        name=conf.name,
        region=conf.region,
        currency=conf.currency,
        locale=conf.locale or "en",
        timezone=conf.timezone or zone,
    )


def show_money(minor: int, currency: str, locale: str) -> str:
    value = Decimal(minor) / 100
    if not currency:
        return str(value.quantize(Decimal("0.01")))
    return str(format_currency(value, currency, locale=locale))


def parse_amount(text: str, locale: str) -> int:
    """Minor units (hundredths) of an amount a person typed; ValueError says what is wrong.

    Currency signs and codes around the number are ignored. The store's locale decides what
    ``,`` and ``.`` mean; a number with a single separator followed by one or two digits is
    read as decimals either way, since that is what a person at a till means."""
    raw = text.strip()
    if raw.startswith(("-", "\u2212")) or raw.endswith("-"):
        raise ValueError("must be from 0 to 1000000000 (a refund is not a redemption)")
    number = _SPACES.sub("", _NOT_NUMBER.sub("", raw))
    if not number or not any(c.isdigit() for c in number):
        raise ValueError(f"{raw[:40]!r} is not an amount")
    value = _read(number, locale)
    if value < 0 or value > MAX_AMOUNT:
        raise ValueError("must be from 0 to 1000000000")
    if value != value.quantize(Decimal("0.01")):
        raise ValueError("at most two decimal places")
    return int(value * 100)


def _read(number: str, locale: str) -> Decimal:
    if number.isdigit():
        return Decimal(number)
    try:
        return Decimal(parse_decimal(number, locale=locale, strict=True))
    except (NumberFormatError, InvalidOperation):
        pass
    if _SIMPLE_DECIMAL.fullmatch(number):
        return Decimal(number.replace(",", "."))
    example = format_decimal(Decimal("45.50"), format="#,##0.00", locale=locale)
    raise ValueError(f"{number!r} is not an amount (e.g. {example})")
