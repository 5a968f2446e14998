"""Channel settings as each channel declares them: read once, typed, defaults in one place;
``storyloop check`` and ``preview`` refuse a bad value in one line naming file, line, field and
what was expected, and ``storyloop channels`` explains every setting without showing a secret."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from channels.base import ChannelContext, SettingProblem
from channels.email import Email
from channels.mastodon import Mastodon
from publisher.cli import main

ROOT = Path(__file__).resolve().parents[2]
SECRET = "tg-secret-5f1e9a"  # never printed, whatever a command says about the setting

CONF = """
SITEURL = "https://cedarandclay.example"
PATH = "content"
OUTPUT_PATH = "output"
STORYLOOP = {{
    "tracking": {{"base_url": "https://t.cedarandclay.example"}},
    "channels": {{
        "mastodon": {{
            "instance": "https://mastodon.social",
            "token": {{"env": "SL_TEST_MASTO"}},
        }},
        "telegram": {{
            "chat_id": "@cedarandclay",
            "bot_token": {{"env": "SL_TEST_TG"}},
        }},
        "newsletter": {{
            "type": "email",
            "host": "127.0.0.1",
            "sender": "a@b.example",
            "subscribers": "content/subscribers.csv",
        }},
    }},
}}
{extra}
"""


def make_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Path:
    (tmp_path / "pelicanconf.py").write_text(CONF.format(extra=extra), encoding="utf-8")
    (tmp_path / "content").mkdir()
    (tmp_path / "output").mkdir()
    shutil.copy(
        ROOT / "tests" / "golden" / "manifest.json", tmp_path / "output" / "storyloop-manifest.json"
    )
    monkeypatch.setenv("SL_TEST_TG", SECRET)
    monkeypatch.delenv("SL_TEST_MASTO", raising=False)
    monkeypatch.delenv("STORYLOOP_SETTINGS", raising=False)
    return tmp_path


def run(site: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(site / "pelicanconf.py"), *args])
    return result.exit_code, result.output


def line_of(site: Path, text: str) -> int:
    lines = (site / "pelicanconf.py").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


# one bad value per kind of setting: (channel, setting, written, what check says of it)
BAD = [
    ("newsletter", "port", '"twenty-five"', "'twenty-five' (expected a whole number)"),
    ("telegram", "photos", '"yes"', "'yes' (expected True or False)"),
    (
        "mastodon",
        "visibility",
        '"friends"',
        "'friends' (expected one of public, unlisted, private, direct)",
    ),
    ("mastodon", "poll_interval", '"soon"', "'soon' (expected a number)"),
    ("newsletter", "unsubscribe_mailto", "[1, 2]", "[1, 2] (expected text)"),
    ("newsletter", "password", f'["{SECRET}"]', "(secret, not shown) (expected text)"),
    ("mastodon", "resend_on_unknown", '"no"', "'no' (expected True or False)"),
]


@pytest.mark.parametrize(("channel", "key", "written", "says"), BAD, ids=[b[1] for b in BAD])
def test_check_refuses_a_bad_value_of_each_kind_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    channel: str,
    key: str,
    written: str,
    says: str,
) -> None:
    extra = f'STORYLOOP["channels"]["{channel}"]["{key}"] = {written}'
    site = make_site(tmp_path, monkeypatch, extra)
    code, out = run(site, "check")
    assert code == 1, out
    line = line_of(site, f'["{key}"] =')
    expected = f"pelicanconf.py:{line}: STORYLOOP.channels.{channel}.{key}: {says}"
    assert f"{expected}  [error]" in out.splitlines(), out
    assert "Traceback" not in out
    assert SECRET not in out


def test_preview_refuses_a_bad_value_with_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path, monkeypatch, 'STORYLOOP["channels"]["newsletter"]["port"] = "x"')
    code, out = run(site, "preview", "berlin-loft-bed", "--channel", "newsletter")
    assert code == 1
    line = line_of(site, '["port"] =')
    assert out.strip().splitlines() == [
        f"error: pelicanconf.py:{line}: STORYLOOP.channels.newsletter.port: 'x' "
        "(expected a whole number)"
    ]


def test_a_good_file_has_no_setting_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path, monkeypatch, 'STORYLOOP["channels"]["newsletter"]["port"] = "25"')
    _, out = run(site, "check")
    assert "STORYLOOP.channels.newsletter.port" not in out, out


def test_defaults_come_from_the_declarations_and_values_are_typed(tmp_path: Path) -> None:
    ctx = ChannelContext(var_dir=tmp_path / "var", content_dir=tmp_path / "content")
    email = Email({"host": "h", "sender": "a@b.example", "port": "2525"}, ctx)
    assert email.settings["port"] == 2525
    assert email.settings["timeout"] == 30.0
    assert email.settings["resend_on_unknown"] is False
    masto = Mastodon({"instance": "https://m.example", "token": "t0ken"}, ctx)
    assert masto.settings["visibility"] == "public"
    assert masto.settings["poll_interval"] == 1.0
    assert "t0ken" not in repr(masto.settings)  # a secret written inline is kept as a Secret
    with pytest.raises(SettingProblem, match=r"^mastodon\.visibility: 'friends'$"):
        Mastodon({"instance": "https://m.example", "visibility": "friends"}, ctx)
    with pytest.raises(TypeError):
        masto.settings["visibility"] = "direct"  # type: ignore[index]


def test_channels_lists_each_setting_with_its_default_and_hides_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site(tmp_path, monkeypatch)
    code, out = run(site, "channels", "--json")
    assert code == 0, out
    assert SECRET not in out
    rows = {(r["name"], r["type"]): r for r in json.loads(out)}
    telegram = {s["setting"]: s for s in rows[("telegram", "telegram")]["settings"]}
    assert telegram["bot_token"]["secret"] is True
    assert telegram["bot_token"]["value"] == "set from $SL_TEST_TG"
    assert telegram["photos"] == {
        "setting": "photos",
        "holds": "True or False",
        "default": True,
        "required": False,
        "secret": False,
        "help": "Post the story's first image with a caption",
        "value": True,
    }
    masto = {s["setting"]: s for s in rows[("mastodon", "mastodon")]["settings"]}
    assert masto["token"]["value"] == "not set from $SL_TEST_MASTO"
    assert masto["visibility"]["holds"] == "one of public, unlisted, private, direct"
    assert masto["visibility"]["default"] == "public"
    newsletter = {s["setting"]: s for s in rows[("newsletter", "email")]["settings"]}
    assert newsletter["port"]["default"] == 587 and newsletter["port"]["value"] == 587
    assert newsletter["port"]["holds"] == "a whole number"
    unconfigured = {s["setting"] for s in rows[("", "bluesky")]["settings"]}
    assert {"handle", "app_password", "resend_on_unknown"} <= unconfigured

    code, text = run(site, "channels")
    assert code == 0, text
    assert SECRET not in text
    lines = text.splitlines()
    assert "Settings of telegram (telegram):" in lines
    assert (
        "  bot_token (secret): text, now set from $SL_TEST_TG."
        " The token @BotFather gave your bot (an admin of the channel)"
    ) in lines
    assert (
        "  visibility (optional): one of public, unlisted, private, direct,"
        ' default "public", now "public". Who sees the posts'
    ) in lines
    assert "Settings of bluesky (not configured):" in lines
