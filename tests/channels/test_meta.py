"""Every registered channel must have its own tests: a new adapter without them fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.base import installed

HERE = Path(__file__).parent


@pytest.mark.parametrize("name", sorted(installed()))
def test_every_installed_channel_has_its_own_test_module(name: str) -> None:
    module = HERE / f"test_{name}.py"
    assert module.exists(), f'channel "{name}" is registered but {module} does not exist'
    assert "def test_" in module.read_text(encoding="utf-8")


def test_every_installed_channel_has_a_golden_file() -> None:
    missing = [n for n in installed() if not (HERE / "golden" / f"{n}.json").exists()]
    assert not missing, f"no golden render for {missing}: run with STORYLOOP_UPDATE_GOLDEN=1"
