"""Shop test kit: a site with three stores in two regions, accounts, and an HTTP session that
talks to a real ``storyloop serve`` process the way a browser does (cookies, forms, CSRF)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import Engine

from publisher import db
from publisher import settings as settings_mod
from tests.conftest import free_port
from tests.tracking.trackkit import Site, storyloop_argv, tracker_env

SETTINGS_TEMPLATE = """
SITEURL = "http://127.0.0.1:{port}"
OUTPUT_PATH = "output"
STORYLOOP_REGIONS = {{"xiamen": "Xiamen", "berlin": "Berlin"}}
STORYLOOP = {{
    "database_url": {db_url!r},
    "var_dir": "var",
    "tracking": {{
        "base_url": "{base_url}",
        "host": "127.0.0.1",
        "port": {port},
        "offer_prefix": "CC",
    }},
    "shop": {shop!r},
    "stores": {{
        "xiamen-1": {{"name": "松陶家居 厦门思明店", "region": "xiamen", "currency": "CNY",
                      "locale": "zh_CN", "timezone": "Asia/Shanghai"}},
        "berlin-1": {{"name": "Cedar & Clay Kreuzberg", "region": "berlin", "currency": "EUR",
                      "locale": "de_DE", "timezone": "Europe/Berlin"}},
        "berlin-2": {{"name": "Cedar & Clay Prenzlauer Berg", "region": "berlin",
                      "currency": "EUR", "locale": "de_DE", "timezone": "Europe/Berlin"}},
    }},
    "channels": {{"mastodon": {{"instance": "https://mastodon.example"}}, "email": {{}}}},
}}
"""
PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def open_shop(
    root: Path, db_url: str, *, base_url: str | None = None, shop: dict[str, object] | None = None
) -> Site:
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    text = SETTINGS_TEMPLATE.format(
        db_url=db_url, port=port, base_url=base_url or f"http://127.0.0.1:{port}", shop=shop or {}
    )
    (root / "pelicanconf.py").write_text(text, encoding="utf-8")
    (root / "output").mkdir(exist_ok=True)
    (root / "output" / "index.html").write_text("<h1>Cedar & Clay</h1>", encoding="utf-8")
    settings = settings_mod.load(root / "pelicanconf.py")
    engine: Engine = db.connect(settings.database_url)
    db.upgrade(engine)
    return Site(root, settings, engine, port)


def storyloop(site: Site, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        storyloop_argv(site, *args),
        cwd=site.root,
        env=tracker_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def add_user(site: Site, name: str, role: str, store: str | None = None) -> None:
    args = ["user", "add", name, "--role", role, *(["--store", store] if store else [])]
    done = storyloop(site, *args, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert done.returncode == 0, done.stderr


@dataclass
class Browser:
    """A requests session against the tracker: keeps cookies, reads CSRF tokens from forms."""

    base: str
    http: requests.Session

    @classmethod
    def open(cls, site: Site) -> Browser:
        return cls(f"http://127.0.0.1:{site.port}", requests.Session())

    def get(self, path: str, **kw: object) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=10, **kw)  # type: ignore[arg-type]

    def csrf(self, path: str) -> str:
        found = CSRF_RE.search(self.get(path).text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)

    def post(self, path: str, data: dict[str, str], **kw: object) -> requests.Response:
        return self.http.post(
            self.base + path,
            data=data,
            allow_redirects=False,
            timeout=10,
            **kw,  # type: ignore[arg-type]
        )

    def login(self, name: str, password: str = PASSWORD) -> requests.Response:
        token = self.csrf("/login")
        return self.post("/login", {"csrf": token, "name": name, "password": password})
