"""Storyloop on sites written the way existing Pelican sites are: folder categories, own
categories, reStructuredText, translations, dates from file names or file times, no Summary,
custom fields, no ARTICLE_PATHS, a zh_CN locale. Each builds with the plugin and the theme, and
``storyloop check`` finds exactly the posts the build finds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest

from publisher.cli import main

BIN = Path(sys.executable).parent
LISTED = re.compile(r"^(?P<path>\S+)  \[(?P<category>.*), (?P<lang>[^,]*)\]  -> (?P<to>.*)$")

BASE = """
from publisher import theme_path
SITENAME = "Field notes"
SITEURL = "http://site.test"
PATH = "content"
TIMEZONE = "Europe/Berlin"
DEFAULT_LANG = "en"
THEME = theme_path()
PLUGINS = ["publisher.pelican_plugin"]
"""


class PelicanSite:
    def __init__(self, root: Path, settings: str = "") -> None:
        self.root = root
        (root / "content").mkdir(parents=True, exist_ok=True)
        (root / "pelicanconf.py").write_text(BASE + settings, encoding="utf-8")

    def write(self, relative: str, text: str) -> Path:
        path = self.root / "content" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"), encoding="utf-8")
        return path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "storyloop"), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "COLUMNS": "300", "TZ": "UTC"},
        )

    def listed(self) -> dict[str, dict[str, str]]:
        done = self.run("check", "--list")
        assert done.returncode == 0, done.stdout + done.stderr
        found = (LISTED.match(line) for line in done.stdout.splitlines())
        return {m["path"]: m.groupdict() for m in found if m}

    def build(self) -> dict[str, Any]:
        done = self.run("build")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        data: dict[str, Any] = json.loads(
            (self.root / "output/storyloop-manifest.json").read_text(encoding="utf-8")
        )
        return data

    def problems(self) -> list[dict[str, Any]]:
        done = self.run("check", "--json")
        data: list[dict[str, Any]] = json.loads(done.stdout)
        return data


def built_sources(manifest: dict[str, Any]) -> set[str]:
    return {
        source
        for story in manifest["stories"]
        for source in (story["source"], *(t["source"] for t in story.get("translations", ())))
    }


# --------------------------------------------------------------------------- the sites

SiteMaker = Callable[[Path], PelicanSite]


def folder_categories(root: Path) -> PelicanSite:
    """No ARTICLE_PATHS, no categories written: the folders are the categories; pages/ holds
    pages, which are not stories; no Summary anywhere."""
    site = PelicanSite(root)
    site.write("python/decorators.md", "Title: Decorators, gently\nDate: 2024-01-03\n\nA body.\n")
    site.write("travel/lisbon.md", "Title: Three days in Lisbon\nDate: 2024-02-10 18:00\n\nTrams.")
    site.write("pages/about.md", "Title: About\n\nWho writes here.\n")
    site.write("drafts/idea.md", "Title: Not yet\nDate: 2024-03-01\nStatus: draft\n\nLater.\n")
    return site


def own_categories(root: Path) -> PelicanSite:
    """Categories the site made up, and fields of its own declared in settings."""
    site = PelicanSite(
        root, 'USE_FOLDER_AS_CATEGORY = False\nSTORYLOOP = {"fields": ["series", "cover"]}\n'
    )
    site.write(
        "first.md",
        "Title: Starting out\nDate: 2023-04-01\nCategory: Notes\nSeries: Basics\n"
        "Cover: none.jpg\n\nText.\n",
    )
    site.write("second.md", "Title: Moving on\nDate: 2023-04-08\nCategory: Essays\n\nMore.\n")
    return site


def restructured_text(root: Path) -> PelicanSite:
    site = PelicanSite(
        root,
        'STORYLOOP = {"channels": {"mastodon": {"instance": "https://m.test",'
        ' "token": {"env": "STORYLOOP_TEST_UNSET"}}}}\n',
    )
    site.write(
        "hello.rst",
        """
Hello from reStructuredText
###########################

:date: 2024-03-01 10:00
:category: Writing
:tags: rst, docs
:channels: mastodon

A body with ``code`` in it.
""",
    )
    site.write("plain.md", "Title: And Markdown too\nDate: 2024-03-02\n\nSide by side.\n")
    return site


def translations(root: Path) -> PelicanSite:
    """Same slug, another Lang: Pelican's translations."""
    site = PelicanSite(root)
    site.write(
        "kitchen.md", "Title: A kitchen in six weeks\nDate: 2024-05-01\nSlug: kitchen\n\nEn.\n"
    )
    site.write(
        "kitchen-zh.md",
        "Title: 六周翻新一间厨房\nDate: 2024-05-01\nSlug: kitchen\nLang: zh\n\n中文。\n",
    )
    site.write(
        "kitchen-de.md", "Title: Eine Küche\nDate: 2024-05-02\nSlug: kitchen\nLang: de\n\nDe."
    )
    return site


def dates_from_file_names(root: Path) -> PelicanSite:
    site = PelicanSite(root, 'FILENAME_METADATA = r"(?P<date>\\d{4}-\\d{2}-\\d{2})-(?P<slug>.*)"\n')
    site.write("2023-05-17-spring-garden.md", "Title: The spring garden\n\nBlossom.\n")
    return site


FILE_TIME = datetime(2022, 9, 14, 8, 30, tzinfo=UTC).timestamp()  # 08:30 UTC


def dates_from_file_times(root: Path) -> PelicanSite:
    site = PelicanSite(root, 'DEFAULT_DATE = "fs"\n')
    path = site.write("undated.md", "Title: Written some time\n\nNo date in the header.\n")
    os.utime(path, (FILE_TIME, FILE_TIME))
    return site


def chinese_locale(root: Path) -> PelicanSite:
    site = PelicanSite(
        root,
        'DEFAULT_LANG = "zh_CN"\nLOCALE = ("zh_CN.UTF-8", "C.UTF-8")\n'
        'TIMEZONE = "Asia/Shanghai"\nDATE_FORMATS = {"zh_CN": "%Y年%m月%d日"}\n'
        'USE_FOLDER_AS_CATEGORY = False\nDEFAULT_CATEGORY = "随笔"\n',
    )
    site.write("tea.md", "Title: 在骑楼的二楼做一间喝功夫茶的小茶室\nDate: 2024-06-01\n\n正文。\n")
    site.write("note.md", "Title: 一则短记\nDate: 2024-06-02\nCategory: 笔记\n\n短。\n")
    return site


SITES: dict[str, SiteMaker] = {
    "folder categories": folder_categories,
    "own categories and fields": own_categories,
    "reStructuredText": restructured_text,
    "translations": translations,
    "dates from file names": dates_from_file_names,
    "dates from file times": dates_from_file_times,
    "zh_CN locale": chinese_locale,
}


@pytest.fixture(params=list(SITES))
def made(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, PelicanSite]:
    return request.param, SITES[request.param](tmp_path)


def test_each_site_builds_and_check_finds_exactly_what_the_build_finds(
    made: tuple[str, PelicanSite],
) -> None:
    _name, site = made
    listed = site.listed()
    manifest = site.build()
    assert listed and set(listed) == built_sources(manifest)
    assert site.run("check", "--fatal", "warnings").returncode == 0
    for story in manifest["stories"]:
        page = site.root / "output" / story["url"].removeprefix("http://site.test/")
        html = page.read_text(encoding="utf-8")
        assert re.sub(r"<wbr>", "", html).count(f">{story['title']}</") >= 1, story["title"]
        assert story["summary"]  # no Summary written: taken from the body


def test_folder_categories_keep_pages_and_drafts_out(tmp_path: Path) -> None:
    site = folder_categories(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    listed = site.listed()
    assert sorted(tmp_path.rglob("*")) == before  # check reads with Pelican, writes nothing
    assert {v["category"] for v in listed.values()} == {"python", "travel"}
    assert not any("pages/" in p or "drafts/" in p for p in listed)
    assert all(v["to"] == "not posted" for v in listed.values())
    menu = (site.build(), (tmp_path / "output/index.html").read_text(encoding="utf-8"))[1]
    assert 'href="http://site.test/category/python.html"' in menu  # the menu is what exists
    assert "/testimonials/" not in menu and "/stories/" not in menu


def test_rst_posts_are_stories_with_their_fields_and_lines(tmp_path: Path) -> None:
    site = restructured_text(tmp_path)
    (story,) = [s for s in site.build()["stories"] if s["source"].endswith(".rst")]
    assert story["title"] == "Hello from reStructuredText"
    assert story["channels"] == ["mastodon"] and story["category"] == "Writing"
    assert story["tags"] == ["rst", "docs"]
    source = tmp_path / "content/hello.rst"
    source.write_text(source.read_text().replace(":channels: mastodon", ":channels: myspace"))
    (problem,) = [p for p in site.problems() if p["severity"] == "error"]
    where = (problem["path"], problem["line"], problem["field"])
    assert where == ("content/hello.rst", 7, "channels")
    assert site.run("build").returncode == 1


def test_translations_are_one_story_in_several_languages(tmp_path: Path) -> None:
    site = translations(tmp_path)
    (story,) = site.build()["stories"]
    assert story["lang"] == "en" and story["title"] == "A kitchen in six weeks"
    assert {t["lang"]: t["title"] for t in story["translations"]} == {
        "zh": "六周翻新一间厨房",
        "de": "Eine Küche",
    }
    for t in story["translations"]:
        assert t["text"] and t["url"].startswith("http://site.test/")
    zh = (tmp_path / "output/kitchen-zh.html").read_text(encoding="utf-8")
    assert '<html lang="zh">' in zh


def test_dates_from_file_names_and_file_times_are_the_publish_times(tmp_path: Path) -> None:
    (named,) = dates_from_file_names(tmp_path / "a").build()["stories"]
    assert named["slug"] == "spring-garden"
    assert named["publish_at"] == "2023-05-16T22:00:00Z"  # midnight in Berlin
    (timed,) = dates_from_file_times(tmp_path / "b").build()["stories"]
    # Pelican reads a file's time as the machine's wall clock (UTC here) in the site's zone
    assert timed["publish_at"] == "2022-09-14T06:30:00Z"


def test_chinese_locale_site_labels_and_headlines(tmp_path: Path) -> None:
    site = chinese_locale(tmp_path)
    manifest = site.build()
    assert {s["lang"].lower() for s in manifest["stories"]} == {"zh_cn"}  # as Pelican has it
    assert {s["category"] for s in manifest["stories"]} == {"随笔", "笔记"}
    home = (tmp_path / "output/index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-cn">' in home.lower() and "最新故事" in home  # the zh catalogue
    assert "骑楼<wbr>的<wbr>二楼" in home  # BudouX's word boundaries for keep-all wrapping


def test_undeclared_site_fields_warn_once_each_with_their_line(tmp_path: Path) -> None:
    site = own_categories(tmp_path)
    (tmp_path / "pelicanconf.py").write_text(BASE + "USE_FOLDER_AS_CATEGORY = False\n")
    warned = [(p["field"], p["line"]) for p in site.problems()]
    assert warned == [("Series", 4), ("Cover", 5)]
    assert site.run("check", "--fatal", "warnings").returncode == 1
    assert site.run("check").returncode == 0


def test_an_archive_goes_nowhere_until_a_rule_or_channels_say_so(tmp_path: Path) -> None:
    site = folder_categories(tmp_path)
    conf = (
        'STORYLOOP = {"channels": {"mastodon": {"instance": "https://m.test", "token": '
        '{"env": "STORYLOOP_TEST_UNSET"}}}, "category_channels": {"python": ["mastodon"]}}\n'
    )
    with (tmp_path / "pelicanconf.py").open("a") as fh:
        fh.write(conf)
    manifest = site.build()
    assert {s["slug"]: s["channels"] for s in manifest["stories"]} == {
        "decorators-gently": ["mastodon"],
        "three-days-in-lisbon": [],
    }
    shown = site.run("plan")
    assert shown.returncode == 0, shown.stderr
    assert "decorators-gently → mastodon" in shown.stdout and "lisbon" not in shown.stdout
    assert "1 missed" in shown.stdout  # and an old post, past the grace period, is not sent


def test_testimonials_are_a_role_by_category_or_customer_field(tmp_path: Path) -> None:
    site = PelicanSite(
        tmp_path,
        'USE_FOLDER_AS_CATEGORY = False\nSTORYLOOP = {"testimonial_categories": ["Kudos"]}\n',
    )
    kudos = "Title: Lovely\nDate: 2024-01-01\nCategory: Kudos\nCustomer: Ann\nConsent: yes\n"
    site.write("a.md", kudos + "\nThank you.")
    site.write("b.md", "Title: Great\nDate: 2024-01-02\nCategory: News\nCustomer: Bo\n\nNo.")
    site.write("c.md", "Title: Plain\nDate: 2024-01-03\nCategory: News\n\nA story.")
    (problem,) = [p for p in site.problems() if p["severity"] == "error"]
    assert (problem["path"], problem["field"]) == ("content/b.md", "Consent")
    (tmp_path / "content/b.md").unlink()
    roles = {s["slug"]: bool(s["testimonial"]) for s in site.build()["stories"]}
    assert roles == {"lovely": True, "plain": False}


def test_an_empty_siteurl_is_a_check_error_naming_the_line(tmp_path: Path) -> None:
    site = folder_categories(tmp_path)
    text = (tmp_path / "pelicanconf.py").read_text().replace('"http://site.test"', '""')
    (tmp_path / "pelicanconf.py").write_text(text)
    (problem,) = [p for p in site.problems() if p["field"] == "SITEURL"]
    assert problem["severity"] == "error" and problem["line"] == 4
    assert site.run("check").returncode == 1
    assert site.run("build").returncode == 0  # Pelican's dev builds still work


def test_storyloop_build_passes_pelicans_theme_option(tmp_path: Path) -> None:
    site = folder_categories(tmp_path)
    text = (tmp_path / "pelicanconf.py").read_text().replace("THEME = theme_path()\n", "")
    (tmp_path / "pelicanconf.py").write_text(text)
    done = site.run("build", "-t", "storyloop")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "output/theme/css/storyloop.css").is_file()


def test_init_writes_a_site_that_checks_and_builds(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "storyloop"), "init", str(tmp_path / "new"), "--lang", "de"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    site = PelicanSite.__new__(PelicanSite)
    site.root = tmp_path / "new"
    conf = (site.root / "pelicanconf.py").read_text(encoding="utf-8")
    assert "# STORYLOOP = {" in conf and "\nSTORYLOOP" not in conf
    assert site.run("check", "--fatal", "warnings").returncode == 0
    stories = site.build()["stories"]
    assert sorted(bool(s["testimonial"]) for s in stories) == [False, True]
    home = (site.root / "output/index.html").read_text(encoding="utf-8")
    assert "Neueste Geschichten" in home  # the German catalogue


def test_every_command_help_shows_an_example() -> None:
    def walk(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
        found = [(path, command)]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += walk(sub, f"{path} {name}")
        return found

    for path, command in walk(main, "storyloop"):
        with click.Context(command, info_name=path) as ctx:
            assert "Example:" in command.get_help(ctx), path


def test_each_channel_posts_the_language_its_settings_ask_for(tmp_path: Path) -> None:
    site = translations(tmp_path)
    unset = '{"env": "STORYLOOP_TEST_UNSET"}'
    with (tmp_path / "pelicanconf.py").open("a") as fh:
        fh.write(
            'STORYLOOP = {"channels": {'
            f'"mastodon": {{"instance": "https://m.test", "token": {unset}, "lang": "zh"}},'
            f'"telegram": {{"chat_id": "@notes", "bot_token": {unset}}}}}}}\n'
        )
    text = (
        (tmp_path / "content/kitchen.md")
        .read_text()
        .replace("Slug:", "Channels: mastodon, telegram\nSlug:")
    )
    (tmp_path / "content/kitchen.md").write_text(text)
    site.build()
    done = site.run("publish", "--due", "--grace-hours", "1000000")
    assert done.returncode == 0 and "2 sent" in done.stdout, done.stderr
    (zh,) = (tmp_path / "var/outbox/mastodon").glob("*.txt")
    (en,) = (tmp_path / "var/outbox/telegram").glob("*.txt")
    assert zh.read_text(encoding="utf-8").startswith("六周翻新一间厨房")
    assert en.read_text(encoding="utf-8").startswith("A kitchen in six weeks")  # the story's own
    links = site.run("links", "kitchen").stdout
    assert re.search(r"^mastodon .* -> http://site.test/kitchen-zh.html$", links, re.M), links
    assert re.search(r"^telegram .* -> http://site.test/kitchen.html$", links, re.M), links
