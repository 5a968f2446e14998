"""``storyloop channels`` and ``storyloop preview`` through the real CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from channels.base import Links, installed
from publisher.cli import main
from publisher.manifest import load_manifest
from publisher.tracking.codes import normalise_offer_code

ROOT = Path(__file__).resolve().parents[2]
CONF = """
SITEURL = "http://127.0.0.1:8000"
PATH = "content"
OUTPUT_PATH = "output"
STORYLOOP = {
    "tracking": {"base_url": "http://127.0.0.1:8000"},
    "channels": {
        "mastodon": {"instance": "https://mastodon.social", "token": {"env": "SL_TEST_MASTO"}},
        "telegram": {"chat_id": "@cedarandclay", "bot_token": {"env": "SL_TEST_TG"}},
        "newsletter": {"type": "email", "host": "127.0.0.1", "sender": "a@b.example",
                       "subscribers": "content/subscribers.csv"},
    },
}
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pelicanconf.py").write_text(CONF, encoding="utf-8")
    (tmp_path / "output").mkdir()
    shutil.copy(
        ROOT / "tests" / "golden" / "manifest.json", tmp_path / "output" / "storyloop-manifest.json"
    )
    monkeypatch.setenv("SL_TEST_TG", "123:tg-secret-value")
    monkeypatch.delenv("SL_TEST_MASTO", raising=False)
    monkeypatch.delenv("STORYLOOP_SETTINGS", raising=False)
    return tmp_path


def run(site: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(site / "pelicanconf.py"), *args])
    return result.exit_code, result.output


def test_channels_lists_every_installed_channel_and_what_is_missing(site: Path) -> None:
    code, out = run(site, "channels", "--json")
    assert code == 0, out
    rows = {(r["name"], r["type"]): r for r in json.loads(out)}
    assert rows[("mastodon", "mastodon")]["status"] == "outbox: var/outbox/mastodon/"
    assert rows[("mastodon", "mastodon")]["missing"] == "token"
    assert rows[("telegram", "telegram")]["status"] == "ready"
    assert rows[("newsletter", "email")]["status"] == "ready"
    assert {t for _, t in rows} == set(installed())
    assert rows[("", "bluesky")]["missing"] == "handle, app_password"
    assert rows[("", "bluesky")]["setup"].startswith("https://")
    assert "tg-secret-value" not in out


def test_channels_prints_a_table(site: Path) -> None:
    code, out = run(site, "channels")
    assert code == 0, out
    assert "Missing" in out and "wechat" in out


def test_preview_prints_exactly_the_render_with_untracked_links(site: Path) -> None:
    code, out = run(
        site, "preview", "berlin-loft-bed", "--channel", "mastodon", "--variant", "B",
        "--links", "original",
    )  # fmt: skip
    assert code == 0, out
    story = load_manifest(site / "output" / "storyloop-manifest.json").by_slug()["berlin-loft-bed"]
    adapter = installed()["mastodon"]({"name": "mastodon"}, None)  # type: ignore[arg-type]
    expected = adapter.render(story, "B", Links())
    assert expected.text in out
    assert story.url in out
    assert "── mastodon (mastodon) ──" in out


def test_preview_uses_the_story_channels_by_default(site: Path) -> None:
    code, out = run(site, "preview", "berlin-plattenbau-bathroom", "--no-payload")
    assert code == 0, out  # bluesky is installed but configured nowhere: it still previews
    assert "── bluesky (bluesky) ──" in out and "── telegram (telegram) ──" in out
    code, out = run(site, "preview", "berlin-sabine-bathroom", "--no-payload")
    assert code == 0, out
    assert "── mastodon (mastodon) ──" in out and "── email (email) ──" in out


def test_unknown_story_is_one_clear_line(site: Path) -> None:
    code, out = run(site, "preview", "no-such-story")
    assert code == 1
    assert 'No story "no-such-story"' in out
    assert "Traceback" not in out


def test_unknown_channel_names_the_installed_ones(site: Path) -> None:
    code, out = run(site, "preview", "berlin-loft-bed", "--channel", "myspace")
    assert code == 1
    assert 'No channel named "myspace" (installed: bluesky, email' in out


def test_unknown_variant_is_reported(site: Path) -> None:
    code, out = run(site, "preview", "berlin-sabine-bathroom", "--variant", "Z")
    assert code == 1
    assert 'no variant "Z"' in out


CHECK_CONF = """
SITEURL = "https://cedarandclay.example"
PATH = "content"
TIMEZONE = "Asia/Shanghai"
STORYLOOP = {
    "tracking": {"base_url": "https://t.cedarandclay.example"},
    "channels": {
        "weibo": {"safe_domain": "cedarandclay.example", "access_token": {"env": "SL_NO"}},
        "wechat": {"appid": "wx0", "secret": {"env": "SL_NO"}},
    },
}
"""
STORY = """Title: #老房子 防潮，趁冬天就该做
Date: 2026-11-14 09:00
Slug: plum-rain
Lang: zh
Category: stories
Summary: 厦门的回南天。
Channels: weibo, wechat

正文。
"""


def test_check_reports_a_lone_hash_for_weibo_and_a_missing_cover_for_wechat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORYLOOP_SETTINGS", raising=False)
    (tmp_path / "pelicanconf.py").write_text(CHECK_CONF, encoding="utf-8")
    (tmp_path / "content" / "stories").mkdir(parents=True)
    (tmp_path / "content" / "stories" / "plum-rain.md").write_text(STORY, encoding="utf-8")
    code, out = run(tmp_path, "check")
    assert code == 1, out
    lines = [line for line in out.splitlines() if "plum-rain.md" in line]
    assert any(
        line.startswith("content/stories/plum-rain.md:1: Title: weibo: unpaired '#'")
        for line in lines
    ), out
    assert any(
        line.startswith("content/stories/plum-rain.md:7: Channels: wechat: routed to WeChat")
        for line in lines
    ), out
    assert "Traceback" not in out


def test_preview_json_prints_each_payload_with_tracked_links_of_the_real_shape(
    site: Path,
) -> None:
    code, out = run(site, "preview", "berlin-loft-bed", "--json")
    assert code == 0, out
    again = run(site, "preview", "berlin-loft-bed", "--json")[1]
    assert out == again  # stable: the same stand-in codes every time
    doc = json.loads(out)
    assert doc["story"] == "berlin-loft-bed"
    story = load_manifest(site / "output" / "storyloop-manifest.json").by_slug()["berlin-loft-bed"]
    posts = {p["channel"]: p for p in doc["posts"]}
    assert set(posts) == set(story.channels)
    masto = posts["mastodon"]
    tracked = masto["links"][story.url]
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/go/[0-9A-Za-z]{10}", tracked)
    assert masto["payload"]["status"] == masto["text"]
    assert masto["text"].endswith(tracked)
    assert story.url not in masto["text"]
    assert normalise_offer_code(masto["offer_code"]) == masto["offer_code"]
    assert masto["offer_code"] in masto["text"]
    assert masto["length"] == {
        "counting": "mastodon",
        "limit": 500,
        "count": masto["length"]["count"],
    }
    assert masto["length"]["count"] <= 500
    adapter = installed()["mastodon"]({"name": "mastodon"}, None)  # type: ignore[arg-type]
    links = Links(urls=masto["links"], offer_code=masto["offer_code"])
    assert adapter.render(story, None, links).payload["status"] == masto["text"]
