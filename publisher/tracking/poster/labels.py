"""The words printed on a poster besides the editor's own, in the story's language, and the
offer's expiry date written the way that language writes dates (Babel's CLDR data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from babel import Locale, UnknownLocaleError
from babel.dates import format_date


@dataclass(frozen=True)
class Labels:
    scan: str  # under the QR code
    code: str  # above the offer code
    until: str  # "{date}" is replaced by the offer's last day
    address: str
    hours: str


LABELS = {
    "en": Labels(
        scan="Scan to read the story",
        code="Show or say this code at the till",
        until="Valid until {date}",
        address="Visit us",
        hours="Opening hours",
    ),
    "zh": Labels(
        scan="扫码阅读故事",
        code="结账时出示或报出优惠码",
        until="有效期至 {date}",
        address="门店地址",
        hours="营业时间",
    ),
    "de": Labels(
        scan="Scannen und die Geschichte lesen",
        code="Diesen Code an der Kasse zeigen oder nennen",
        until="Gültig bis {date}",
        address="Besuchen Sie uns",
        hours="Öffnungszeiten",
    ),
}
FALLBACK = "en"


def language(lang: str) -> str:
    """``zh-Hant`` -> ``zh``, ``de_AT`` -> ``de``; a language without labels -> English."""
    base = lang.replace("_", "-").split("-")[0].lower()
    return base if base in LABELS else FALLBACK


def labels_for(lang: str) -> Labels:
    return LABELS[language(lang)]


def until_text(lang: str, until: date) -> str:
    """The expiry line; the date in the story's own locale (``de-AT``: Jänner) when its language
    has labels, otherwise in the fallback's, so one line never mixes two languages."""
    base = language(lang)
    try:
        locale = Locale.parse(lang.replace("-", "_") if lang.lower().startswith(base) else base)
    except (UnknownLocaleError, ValueError):
        locale = Locale.parse(base)
    return labels_for(lang).until.format(date=format_date(until, "long", locale=locale))
