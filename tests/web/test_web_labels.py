"""Labels and money: every message in the templates and the till's sentences has a Chinese and a
German translation, and amounts are read and shown in the store's locale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from publisher.shop.redeem import Reason, read_code
from publisher.shop.stores import parse_amount, show_money
from publisher.web import i18n
from tests.conftest import ROOT


def _extracted(tmp_path: Path) -> set[str]:
    pot = tmp_path / "web.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "-k", "_", "-o", str(pot), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as handle:
        return {str(m.id) for m in read_po(handle) if m.id}


@pytest.mark.parametrize("lang", ["zh", "de"])
def test_every_label_is_translated(tmp_path: Path, lang: str) -> None:
    wanted = _extracted(tmp_path)
    assert len(wanted) > 60
    path = i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "web.po"
    with path.open("rb") as handle:
        catalog = {str(m.id): m.string for m in read_po(handle) if m.id}
    assert sorted(m for m in wanted if not catalog.get(m)) == []
    translations = i18n.translations(lang)
    assert translations.gettext("Log in") != "Log in"


@pytest.mark.parametrize(
    ("typed", "locale", "minor"),
    [
        ("45,50", "de_DE", 4550),
        ("45,50 €", "de_DE", 4550),
        ("1.234,50", "de_DE", 123450),
        ("45.50", "de_DE", 4550),  # a dot with two decimals is what the person meant
        ("¥299", "zh_CN", 29900),
        ("299.5", "zh_CN", 29950),
        ("1,299", "zh_CN", 129900),
        ("12", "en", 1200),
    ],
)
def test_amounts_are_read_in_the_store_s_locale(typed: str, locale: str, minor: int) -> None:
    assert parse_amount(typed, locale) == minor


@pytest.mark.parametrize("typed", ["", "viel", "12,345", "-5", "1.2.3"])
def test_amounts_that_cannot_be_meant_are_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(typed, "de_DE")


def test_money_is_shown_as_the_store_s_locale_writes_it() -> None:
    assert show_money(4550, "EUR", "de_DE") == "45,50\xa0€"
    assert show_money(29900, "CNY", "zh_CN") == "¥299.00"


def test_codes_are_read_forgivingly_and_mistypes_are_named() -> None:
    from publisher.tracking.codes import check_character

    body = "7KQ4W"
    code = f"CC-{body}-{check_character(body)}"
    for typed in (code.lower(), code.replace("-", " "), code[3:], f"c c {code[3:]}"):
        assert read_code(typed, "CC") == (code, None)
    assert read_code("C0-" + code[3:], "CO") == ("CO-" + code[3:], None)  # 0 for O in the prefix
    assert read_code(code[:-1] + "O", "CC") == (None, Reason.MISTYPED)
