"""Labels in Chinese, English and German through Babel's catalogues.

The catalogues are kept as ``.po`` text under ``locale/<lang>/LC_MESSAGES/web.po`` (extracted from
the templates with ``pybabel extract -F babel.cfg``) and compiled in memory when the app starts,
so there is no binary ``.mo`` file to forget to rebuild.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("zh", "en", "de")
DEFAULT_LANGUAGE = "en"
DOMAIN = "web"


@cache
def translations(lang: str) -> Translations:
    """The compiled catalogue for ``lang`` (English: the messages as written)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.is_file():
        return Translations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def language_of(tag: str | None) -> str | None:
    """``de_DE``, ``zh-Hans``, ``en`` -> one of LANGUAGES, or None."""
    if not tag:
        return None
    try:
        language = Locale.parse(tag.replace("-", "_")).language
    except (ValueError, UnknownLocaleError):
        return None
    return language if language in LANGUAGES else None


def negotiate(accept_language: str) -> str:
    """The best of LANGUAGES for an ``Accept-Language`` header."""
    preferred: list[tuple[float, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        preferred.append((-quality, f"{index:02d}{tag.strip()}"))
    for _, keyed in sorted(preferred):
        found = language_of(keyed[2:])
        if found:
            return found
    return DEFAULT_LANGUAGE


def first_language(*candidates: str | None, fallback: Iterable[str] = ()) -> str:
    for tag in (*candidates, *fallback):
        found = language_of(tag)
        if found:
            return found
    return DEFAULT_LANGUAGE
