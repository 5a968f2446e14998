"""Shop test kit: a site with three stores in two regions, accounts, and an HTTP session that
talks to a real ``storyloop serve`` process the way a browser does (cookies, forms, CSRF)."""

from __future__ import annotations

import copy
import html
import json
import re
import runpy
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine

from publisher import db
from publisher import settings as settings_mod
from publisher.model import MANIFEST_VERSION, Manifest, Story
from tests.conftest import ROOT, free_port
from tests.site_helpers import pelican_build
from tests.tracking.trackkit import Site, make_story, storyloop_argv, tracker_env

SETTINGS_TEMPLATE = """
SITEURL = "http://127.0.0.1:{port}"
OUTPUT_PATH = "output"
STORYLOOP_REGIONS = {{"xiamen": "Xiamen", "berlin": "Berlin", "shanghai": "Shanghai"}}
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
        "shanghai-1": {{"name": "松陶家居 上海徐汇店", "region": "shanghai", "currency": "CNY",
                        "locale": "zh_CN", "timezone": "Asia/Shanghai"}},
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


def build_sample_site(site: Site) -> None:
    """The repository's sample site, built by Pelican into the site's output folder with its
    links and QR codes pointing at this tracker (which also serves the pages)."""
    conf = copy.deepcopy(runpy.run_path(str(ROOT / "pelicanconf.py"))["STORYLOOP"])
    conf["tracking"]["base_url"] = site.settings.tracking_base_url
    pelican_build(
        site.root / "output", site_url=site.settings.tracking_base_url, extra={"STORYLOOP": conf}
    )


def write_manifest(site: Site, *stories: Story) -> None:
    manifest = Manifest(MANIFEST_VERSION, site.settings.site_url, tuple(stories))
    path = site.settings.manifest_path
    path.write_text(json.dumps(manifest.to_json(), ensure_ascii=False), encoding="utf-8")


def offer_story(slug: str, region: str, **over: Any) -> Story:
    """A story with an offer, as the manifest carries it."""
    fields: dict[str, Any] = {
        "slug": slug,
        "title": f"Story {slug}",
        "region": region,
        "lang": "en",
        "offer": f"A free sample for {slug}",
        "store": None,
        "url": f"http://127.0.0.1/stories/{slug}.html",
        "channels": ("mastodon",),
        "variants": {},
        **over,
    }
    return make_story(**fields)


def shared_code(site: Site, story: Story, delivery: str, channel: str = "mastodon") -> str:
    """The offer code printed in a post of ``story`` (as the engine makes it on publish)."""
    from publisher.tracking import prepare_links

    with site.engine.begin() as conn:
        links = prepare_links(
            conn, site.settings, delivery_id=delivery, story=story, channel=channel, variant="A"
        )
    assert links.offer_code
    return links.offer_code


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

    def follow(self, url: str) -> requests.Response:
        """A tracked link, as a phone's browser follows it (the 302, then the page)."""
        return self.http.get(url, timeout=10, headers={"User-Agent": PHONE})

    def claim(self, slug: str) -> str:
        """Press "get my code" on a story's offer page; the personal code made."""
        answer = self.post(f"/offer/{slug}", {"csrf": self.csrf(f"/offer/{slug}")})
        assert answer.status_code == 303, answer.text
        return str(answer.headers["location"]).rsplit("/", 1)[1]

    def check(self, code: str, store: str | None = None) -> requests.Response:
        data = {"csrf": self.csrf("/till" + (f"?store={store}" if store else "")), "code": code}
        if store:
            data["store"] = store
        return self.post("/till/check", data)

    def redeem(
        self, code: str, amount: str, receipt: str, store: str | None = None
    ) -> requests.Response:
        """Check the code, then confirm with the form the check page showed."""
        page = self.check(code, store)
        found = REQUEST_ID_RE.search(page.text)
        assert found, page.text
        data = {
            "csrf": self.csrf("/till"),
            "code": code,
            "request_id": found.group(1),
            "amount": amount,
            "receipt": receipt,
        }
        if store:
            data["store"] = store
        return self.post("/till/confirm", data)


PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
REQUEST_ID_RE = re.compile(r'name="request_id" value="([^"]+)"')
NOTICE_RE = re.compile(r'<(p|div) class="notice (good|bad|warn)"[^>]*>(.*?)</\1>', re.S)


def notices(page: requests.Response) -> list[tuple[str, str]]:
    """(kind, text) of each notice on a page, tags stripped and spaces collapsed."""
    found = []
    for _, kind, inner in NOTICE_RE.findall(page.text):
        text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", inner).split()))
        found.append((kind, text))
    return found
