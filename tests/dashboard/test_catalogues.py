"""Every label of the dashboard is translated into Chinese and German, with its placeholders."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

PACKAGE = Path(__file__).resolve().parents[2] / "publisher" / "dashboard"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


@pytest.fixture(scope="module")
def messages(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    pot = tmp_path_factory.mktemp("pot") / "dashboard.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            str(PACKAGE / "babel.cfg"),
            "-o",
            str(pot),
            str(PACKAGE),
        ],
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        ids = [m.id for m in read_po(handle) if m.id]
    singular = [i for i in ids if isinstance(i, str)]
    assert singular == ids, "the dashboard has no plural labels"
    return set(singular)


@pytest.mark.parametrize("lang", ["zh", "de"])
def test_every_label_is_translated_with_its_placeholders(messages: set[str], lang: str) -> None:
    path = PACKAGE / "locale" / lang / "LC_MESSAGES" / "dashboard.po"
    with path.open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle, locale=lang) if m.id}
    missing = sorted(m for m in messages if not catalog.get(m))
    assert missing == []
    for message in messages:
        placeholders = sorted(PLACEHOLDER.findall(message))
        translated = catalog[message]
        assert isinstance(translated, str), message
        assert sorted(PLACEHOLDER.findall(translated)) == placeholders, message
