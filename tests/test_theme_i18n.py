"""The theme's labels: every one in the templates is translated into zh and de, and the committed
``.mo`` files are what the ``.po`` files compile to (re-compile with
``pybabel compile -d themes/storyloop/translations``)."""

from __future__ import annotations

import gettext
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from publisher.pelican_theme import wordbreaks

THEME = Path(__file__).resolve().parent.parent / "themes" / "storyloop"
LANGS = ("zh", "en", "de")


def template_labels() -> set[str]:
    found = extract_from_dir(
        str(THEME / "templates"),
        method_map=[("**.html", "jinja2")],
        options_map={"**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}},
        keywords={"_": None, "gettext": None, "ngettext": (1, 2), "translate": (2,)},
    )
    return {m[2] if isinstance(m[2], str) else m[2][0] for m in found}


@pytest.mark.parametrize("lang", LANGS)
def test_every_label_in_the_templates_is_in_the_catalogue(lang: str) -> None:
    with (THEME / f"translations/{lang}/LC_MESSAGES/messages.po").open("rb") as fh:
        catalogue = read_po(fh)
    labels = template_labels()
    assert len(labels) > 25
    missing = [label for label in labels if not (catalogue.get(label) and catalogue[label].string)]
    assert missing == [], f"{lang}: untranslated labels"
    assert not [m.id for m in catalogue if m.fuzzy and m.id], "fuzzy entries are not compiled"


@pytest.mark.parametrize("lang", LANGS)
def test_committed_mo_is_the_compiled_po(lang: str) -> None:
    folder = THEME / f"translations/{lang}/LC_MESSAGES"
    with (folder / "messages.po").open("rb") as fh:
        compiled = BytesIO()
        write_mo(compiled, read_po(fh))
    with (folder / "messages.mo").open("rb") as fh:
        committed = read_mo(fh)
    fresh = read_mo(BytesIO(compiled.getvalue()))

    def messages(catalogue: Any) -> dict[str, str]:
        return {repr(m.id): repr(m.string) for m in catalogue if m.id}

    assert messages(committed) == messages(fresh)


def test_the_catalogues_load_with_pythons_gettext() -> None:
    zh = gettext.translation("messages", str(THEME / "translations"), languages=["zh"])
    assert zh.gettext("Latest stories") == "最新故事"
    de = gettext.translation("messages", str(THEME / "translations"), languages=["de"])
    assert de.ngettext("%(num)d story or review", "%(num)d stories and reviews", 3) == (
        "%(num)d Geschichten und Bewertungen"
    )


def test_chinese_headlines_get_word_boundaries_and_stay_escaped() -> None:
    assert str(wordbreaks("老公房的厨房", "zh")) == "老<wbr>公房<wbr>的<wbr>厨房"
    assert "<wbr>" in str(wordbreaks("一把外婆留下的藤椅", "zh-Hant"))
    assert str(wordbreaks("Fish & <chips>", "en")) == "Fish &amp; &lt;chips&gt;"
    assert "<script>" not in str(wordbreaks("<script>的厨房", "zh_CN"))
