"""Build the sample site into a folder and read what came out (site and browser tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SITE_URL = "http://127.0.0.1:8000"  # pelicanconf.py's SITEURL
MANIFEST = "storyloop-manifest.json"


def pelican_build(
    output: Path, site_url: str | None = None, extra: dict[str, object] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run plain ``pelican`` on the sample content, as a user would, from the repository root.

    ``site_url`` and ``extra`` override settings through Pelican's own ``-e KEY=JSON``.
    """
    settings = dict(extra or {})
    if site_url:
        settings |= {"SITEURL": site_url, "FEED_DOMAIN": site_url}
    argv = [str(BIN / "pelican"), "content", "-s", "pelicanconf.py", "-o", str(output)]
    argv += ["--ignore-cache", "--log-handler", "plain"]
    if settings:
        argv += ["-e", *(f"{key}={json.dumps(value)}" for key, value in settings.items())]
    return run(argv)


def storyloop_build(output: Path) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "storyloop"), "build", "--output", str(output)])


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def manifest(output: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((output / MANIFEST).read_text(encoding="utf-8"))
    return data


def html_pages(output: Path) -> list[Path]:
    """Every page the theme rendered (the static theme folder holds none)."""
    return sorted(p for p in output.rglob("*.html") if "theme" not in p.relative_to(output).parts)


def parse(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def meta(soup: BeautifulSoup, key: str) -> str | None:
    """The content of ``<meta property=key>`` or ``<meta name=key>``."""
    tag = soup.find("meta", attrs={"property": key}) or soup.find("meta", attrs={"name": key})
    if not isinstance(tag, Tag):
        return None
    value = tag.get("content")
    return str(value) if value is not None else None


def json_ld(soup: BeautifulSoup) -> list[dict[str, object]]:
    scripts = soup.find_all("script", attrs={"type": "application/ld+json"})
    return [json.loads(s.string or "") for s in scripts]


def references(soup: BeautifulSoup) -> Iterator[tuple[str, str]]:
    """(tag name, URL) of every link, image and stylesheet on the page."""
    for tag in soup.find_all(["a", "link", "img", "script", "source"]):
        for attr in ("href", "src"):
            value = tag.get(attr)
            if value:
                yield tag.name, str(value)


def local_file(output: Path, page: Path, url: str, site_url: str) -> Path | None:
    """The file in ``output`` a URL points to, or None when the URL leaves the site."""
    base = site_url.rstrip("/") + "/" + page.relative_to(output).as_posix()
    absolute = urljoin(base, url)
    parts, site = urlsplit(absolute), urlsplit(site_url)
    if (parts.scheme, parts.netloc) != (site.scheme, site.netloc):
        return None
    path = parts.path[len(site.path.rstrip("/")) :].lstrip("/")
    target = output / path
    return target / "index.html" if path == "" or path.endswith("/") else target
