"""What the Storyloop theme needs from Pelican, as a plugin of its own: labels in the language
of each page through Jinja2's i18n extension and the theme's gettext catalogues, and the
``wordbreaks`` filter that lets Chinese headlines wrap between words.

The Storyloop plugin (``publisher.pelican_plugin``) registers this too; a site that wants only
the theme lists ``PLUGINS = ["publisher.pelican_theme"]``. Catalogues live in the theme, in
``translations/<lang>/LC_MESSAGES/messages.{po,mo}``; the ``.mo`` files are compiled from the
``.po`` files with Babel and committed (``tests/test_theme_i18n.py`` fails when they differ).
"""

from __future__ import annotations

import gettext as gettext_mod
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import budoux
from jinja2 import nodes, pass_context
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.runtime import Context
from markupsafe import Markup, escape
from pelican import signals

DOMAIN = "messages"


@cache
def catalogue(folder: str, lang: str) -> gettext_mod.NullTranslations:
    """The theme's catalogue for ``lang`` (``zh_CN`` and ``zh-Hans`` fall back to ``zh``);
    English, the language of the msgids, when there is none."""
    tags = [lang.replace("-", "_"), lang.replace("-", "_").split("_")[0]]
    try:
        return gettext_mod.translation(DOMAIN, folder, languages=tags)
    except OSError:
        return gettext_mod.NullTranslations()


@cache
def _parser(traditional: bool) -> budoux.Parser:
    if traditional:
        return budoux.load_default_traditional_chinese_parser()
    return budoux.load_default_simplified_chinese_parser()


TRADITIONAL = ("zh_tw", "zh_hk", "zh_mo", "zh_hant")


def wordbreaks(text: Any, lang: str | None) -> Markup:
    """``text`` escaped, with ``<wbr>`` between the words of a Chinese text (BudouX finds
    them): with the theme's ``word-break: keep-all`` a headline then wraps between words, not
    inside one. Other languages come back escaped and unchanged."""
    return Markup(_wordbreaks(str(text), (lang or "").replace("-", "_").lower()))


@lru_cache(maxsize=4096)
def _wordbreaks(text: str, tag: str) -> str:
    """Cached: a headline is shown on its page and on every list page that has its card."""
    if not tag.startswith("zh"):
        return str(escape(text))
    phrases = _parser(tag.startswith(TRADITIONAL)).parse(text)
    return str(Markup("<wbr>").join(escape(p) for p in phrases))


class Fragments(Extension):
    """``{% cache "name", lang, ... %}…{% endcache %}``: the block is rendered the first time a
    page of the build asks for it with that key, and repeated after that. Every page of a
    language has the same menu and footer (the current page's link aside, so its address is in
    the key wherever it can be in the menu); rendering them again was about a quarter of a story
    page's time. The key must name everything the block shows that differs between pages: what
    is the same for the whole build (the settings, categories, regions, pages) is not in it.
    One cache an environment, and Pelican makes its environments anew for every build."""

    tags = {"cache"}  # noqa: RUF012 (Jinja declares it a set on Extension)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.rendered: dict[tuple[Any, ...], str] = {}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        key = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            key.append(parser.parse_expression())
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        call = self.call_method("_once", [nodes.List(key)])
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _once(self, key: list[Any], caller: Any) -> str:
        fixed = tuple(key)
        found = self.rendered.get(fixed)
        if found is None:
            found = self.rendered[fixed] = caller()
        return found


class Labels:
    """The i18n callables for one theme: ``_()`` follows the page's ``lang`` (set by each
    template, falling back to ``DEFAULT_LANG``); ``translate(lang, text)`` is for macros,
    which are imported without the page's context."""

    def __init__(self, folder: str, default_lang: str) -> None:
        self.folder = folder
        self.default_lang = default_lang

    def page_lang(self, context: Context) -> str:
        lang = context.get("lang")
        return str(lang) if isinstance(lang, str) and lang else self.default_lang

    def translate(self, lang: str | None, message: str) -> str:
        return catalogue(self.folder, lang or self.default_lang).gettext(message)

    def callables(self) -> tuple[Any, Any]:
        @pass_context
        def gettext(context: Context, message: str) -> str:
            return catalogue(self.folder, self.page_lang(context)).gettext(message)

        @pass_context
        def ngettext(context: Context, singular: str, plural: str, n: int) -> str:
            return catalogue(self.folder, self.page_lang(context)).ngettext(singular, plural, n)

        return gettext, ngettext


def on_generator_init(generator: Any) -> None:
    env = generator.env
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    env.add_extension(Fragments)
    labels = Labels(
        str(Path(generator.theme) / "translations"),
        str(generator.settings.get("DEFAULT_LANG") or "en"),
    )
    gettext, ngettext = labels.callables()
    env.install_gettext_callables(gettext, ngettext, newstyle=True)
    env.globals["translate"] = labels.translate
    env.filters["wordbreaks"] = wordbreaks


def register() -> None:
    signals.generator_init.connect(on_generator_init)


__all__ = ["Fragments", "Labels", "catalogue", "register", "wordbreaks"]
