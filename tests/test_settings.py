"""The engine's own settings (``STORYLOOP``), read once into frozen typed objects: defaults in
one place, every wrong value refused when the file is read in one line naming file, line, key
path and what was expected (never a secret's value), and each configured channel read by its
declarations then, so ``check`` and ``channels`` can say what is wrong with it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from publisher.cli import main
from publisher.errors import SettingsError
from publisher.settings import EngineSettings, Secret, TrackingSettings, engine_settings, load

SECRET = "sk-live-7d2f9c"

CONF = """SITEURL = "https://cedarandclay.example"
STORYLOOP = {{
    "tracking": {{
        "base_url": "https://t.cedarandclay.example",
        "api_token": {{"env": "SL_TEST_API"}},
    }},
    "channels": {{
        "mastodon": {{
            "instance": "https://mastodon.social",
            "token": {{"env": "SL_TEST_MASTO"}},
        }},
    }},
}}
{extra}
"""


def write(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "pelicanconf.py"
    path.write_text(CONF.format(extra=extra), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_defaults_live_in_the_dataclasses_and_values_are_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SL_TEST_API", SECRET)
    extra = 'STORYLOOP["max_attempts"] = "3"\nSTORYLOOP["tracking"]["port"] = 8080'
    settings = load(write(tmp_path, extra))
    engine = settings.engine
    assert engine.max_attempts == 3 and engine.grace_period_hours == 6.0
    assert engine.tracking.port == 8080 and engine.tracking.host == TrackingSettings.host
    assert engine.tracking.api_token == Secret(SECRET) and SECRET not in repr(engine)
    assert engine.testimonial_categories == ("testimonials",) and engine.stores == {}
    assert settings.tracking_base_url == "https://t.cedarandclay.example"
    with pytest.raises(dataclasses.FrozenInstanceError):
        engine.max_attempts = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        engine.channels["x"] = {}  # type: ignore[index]


def test_a_pelican_settings_dict_reads_the_same_way() -> None:
    engine = engine_settings({"STORYLOOP": {"default_channels": ["mastodon"]}})
    assert isinstance(engine, EngineSettings)
    assert engine.default_channels == ("mastodon",)
    assert engine_settings({}) == EngineSettings(tracking=engine.tracking)


BAD = [
    (
        'STORYLOOP["tracking"]["port"] = "eighty"',
        "tracking.port",
        "'eighty' (expected a whole number)",
    ),
    ('STORYLOOP["sweep_seconds"] = "soon"', "sweep_seconds", "'soon' (expected a number)"),
    (
        'STORYLOOP["tracking"]["behind_proxy"] = "yes"',
        "tracking.behind_proxy",
        "'yes' (expected True or False)",
    ),
    (
        'STORYLOOP["default_channels"] = "mastodon"',
        "default_channels",
        "'mastodon' (expected a list of text)",
    ),
    ('STORYLOOP["web"] = ["session"]', "web", "['session'] (expected a dict)"),
    (
        f'STORYLOOP["tracking"]["signing_key"] = ["{SECRET}"]',
        "tracking.signing_key",
        '(secret, not shown) (expected a secret, {"env": "VARIABLE"})',
    ),
]


@pytest.mark.parametrize(("extra", "path", "says"), BAD, ids=[b[1] for b in BAD])
def test_a_wrong_value_is_refused_when_the_file_is_read(
    tmp_path: Path, extra: str, path: str, says: str
) -> None:
    source = write(tmp_path, extra)
    line = line_of(source, extra.split(" = ")[0])
    with pytest.raises(SettingsError) as caught:
        load(source)
    assert str(caught.value) == f"pelicanconf.py:{line}: STORYLOOP.{path}: {says}"
    assert SECRET not in str(caught.value)
    result = CliRunner().invoke(main, ["--config", str(source), "check"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: {caught.value}"]


def test_a_wrong_value_inside_the_dict_names_its_own_line(tmp_path: Path) -> None:
    source = tmp_path / "pelicanconf.py"
    source.write_text(
        'STORYLOOP = {\n    "tracking": {\n        "base_url": "https://t.example",\n'
        '        "port": [80],\n    },\n}\n',
        encoding="utf-8",
    )
    with pytest.raises(SettingsError, match=r"^pelicanconf.py:4: STORYLOOP.tracking.port: \[80\]"):
        load(source)


def test_check_warns_of_a_channel_key_no_declaration_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SL_TEST_MASTO", raising=False)
    source = write(tmp_path, 'STORYLOOP["channels"]["mastodon"]["visibilty"] = "unlisted"')
    (tmp_path / "content").mkdir()
    settings = load(source)
    assert settings.configured["mastodon"].unknown == ("visibilty",)
    result = CliRunner().invoke(main, ["--config", str(source), "check"])
    line = line_of(source, '["visibilty"]')
    said = [x for x in result.output.splitlines() if "visibilty" in x]
    assert said and said[0].startswith(
        f"pelicanconf.py:{line}: STORYLOOP.channels.mastodon.visibilty: not a setting of mastodon"
    ), result.output
    assert said[0].endswith("[warning]")

    shown = CliRunner().invoke(main, ["--config", str(source), "channels", "--json"])
    rows = {r["name"]: r for r in json.loads(shown.output)}
    assert rows["mastodon"]["unknown"] == ["visibilty"]


def test_a_channel_is_read_by_its_declarations_when_the_file_is(tmp_path: Path) -> None:
    settings = load(write(tmp_path, 'STORYLOOP["channels"]["mastodon"]["daily_cap"] = "2"'))
    found = settings.configured["mastodon"]
    assert found.values["daily_cap"] == 2 and found.values["visibility"] == "public"
    assert found.problems == () and found.unknown == ()
