"""Storyloop as a user installs it: a wheel built from this repository, installed into a fresh
virtual environment outside it, makes a new site with ``storyloop init`` that builds with the
theme packaged in the wheel, and Chromium shows it cleanly in Chinese and English at a phone's
and a desktop's size. Dependencies come from pip's cache (or PyPI), never from this checkout.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.test_browser import ARGS, SHOTS, VIEWPORTS, QuietHandler, visit

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
LABELS = {"zh": ("最新故事", "客户怎么说"), "en": ("Latest stories", "What customers say")}
PAGES = {"home": "", "story": "stories/how-we-started.html", "reviews": "testimonials/"}


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: nothing pointing into this checkout."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "STORYLOOP_SETTINGS")
    return {k: v for k, v in os.environ.items() if k not in drop} | {"COLUMNS": "300"}


def run(argv: list[str | Path], cwd: Path, timeout: int = 600) -> str:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bin/`` of a fresh venv with only the wheel (and its dependencies) installed."""
    work = tmp_path_factory.mktemp("wheel")
    started = time.perf_counter()
    run([sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", ROOT], work)
    (wheel,) = (work / "dist").glob("storyloop-*.whl")
    run([sys.executable, "-m", "venv", work / "venv"], work)
    bin_dir = work / "venv" / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "-q", wheel], work)
    print(f"wheel built and installed in {time.perf_counter() - started:.0f} s")
    return bin_dir


def test_the_wheel_carries_the_theme_and_nothing_from_the_checkout(venv: Path) -> None:
    code = "import publisher; print(publisher.__file__); print(publisher.theme_path())"
    module, theme = run([venv / "python", "-c", code], venv.parent).split()
    assert module.startswith(str(venv.parent)) and theme.startswith(str(venv.parent))
    assert not Path(theme).is_symlink()
    for part in ("templates/base.html", "static/css/storyloop.css"):
        assert (Path(theme) / part).is_file(), part
    for lang in ("zh", "en", "de"):
        assert (Path(theme) / f"translations/{lang}/LC_MESSAGES/messages.mo").is_file(), lang


@pytest.fixture(scope="module")
def browser(playwright: Any, chromium_path: str) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=chromium_path, args=ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module", params=["zh", "en"])
def new_site(request: pytest.FixtureRequest, venv: Path) -> Iterator[tuple[str, str]]:
    """A site made by the installed ``storyloop init``, built for and served on a free port."""
    lang = str(request.param)
    site = venv.parent.parent / f"site-{lang}"
    run([venv / "storyloop", "init", site, "--lang", lang], venv.parent.parent)
    out = site / "output"
    out.mkdir(parents=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=out))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    long_line = "storyloop check --fatal warnings && " * 12
    with (site / "content/stories/how-we-started.md").open("a", encoding="utf-8") as fh:
        fh.write(f"\n```\n{long_line}\n```\n\n| {' | '.join(['column'] * 14)} |\n")
        fh.write(f"|{'---|' * 14}\n| {' | '.join(['a-long-cell-value'] * 14)} |\n")
    conf = site / "pelicanconf.py"
    conf.write_text(conf.read_text().replace("http://127.0.0.1:8000", url), encoding="utf-8")
    run([venv / "storyloop", "check", "--fatal", "warnings"], site)
    built = run([venv / "storyloop", "build"], site)
    assert "built 2 stories" in built
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield lang, url
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("name", list(PAGES))
def test_a_new_site_shows_cleanly_in_its_language(
    browser: Any, new_site: tuple[str, str], viewport: str, name: str
) -> None:
    lang, url = new_site
    loaded = visit(browser, f"{url}/{PAGES[name]}", viewport)
    page = loaded.page
    try:
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"wheel-{lang}-{viewport}-{name}.png"), full_page=True)
        assert loaded.errors == []
        assert page.evaluate("document.documentElement.lang") == lang
        assert page.locator("h1").count() == 1
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= page.evaluate("window.innerWidth"), "the page scrolls sideways"
        if name == "story" and viewport == "phone":  # wide code and tables scroll in their box
            for box in ("pre", "table"):
                scrolls = "el => el.scrollWidth > el.clientWidth"
                assert page.locator(f"main {box}").last.evaluate(scrolls) is True, box
        if name == "home":
            text = page.locator("main").inner_text()
            assert all(label in text for label in LABELS[lang]), text
    finally:
        page.context.close()
