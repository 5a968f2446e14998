"""The dashboard's labels: its own Babel catalogue (domain ``dashboard``), merged over the web
layer's, so the shared page frame (log out, language switch) and the sections speak alike."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from publisher.web import i18n as web_i18n

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "dashboard"
LANGUAGES = web_i18n.LANGUAGES


def _compiled(path: Path, lang: str, domain: str) -> Translations:
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


@cache
def translations(lang: str) -> Translations:
    """The web layer's catalogue for ``lang`` with the dashboard's merged in."""
    merged = Translations()
    merged.merge(web_i18n.translations(lang))
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if path.is_file():
        merged.merge(_compiled(path, lang, DOMAIN))
    return merged
