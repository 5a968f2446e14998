"""The testimonial form against a real ``storyloop serve``: a body over the limit is answered
413, a form without its CSRF token 403, mistakes 422 with nothing kept, a forged or altered
link 404, too many failures on one link 429, and two answers sent at once keep one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from publisher.customers import invites
from publisher.customers.schema import testimonials
from publisher.web.app import session_key
from tests.customers.photokit import gps_jpeg
from tests.tracking.trackkit import SIGNING_KEY, Site, Tracker
from tests.web.shopkit import CSRF_RE

GOOD = {
    "text": "Quick and friendly.",
    "rating": "5",
    "name": "Mei",
    "scope": "site",
    "duration": "withdrawn",
    "agree": "yes",
}


def _link(site: Site, receipt: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STORYLOOP_SIGNING_KEY", SIGNING_KEY)  # as tracker_env() gives serve
    secret = invites.secret_for(session_key(site.settings))
    today = datetime.now(UTC).date()
    token = invites.make(secret, "xiamen-1", f"shop:xiamen-1:{receipt}", today)
    return f"http://127.0.0.1:{site.port}{invites.PATH}{token}"


def _form(link: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    page = http.get(link, timeout=10)
    assert page.status_code == 200, page.text
    found = CSRF_RE.search(page.text)
    assert found
    return http, found.group(1)


def _kept(site: Site) -> int:
    with site.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(testimonials)).scalar_one())


def test_limits_csrf_mistakes_and_throttling(
    shop: Site, serve: Callable[[Site], Tracker], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(shop)
    link = _link(shop, "R-1", monkeypatch)
    http, csrf = _form(link)
    assert "您这次到店体验如何？" in http.get(link, timeout=10).text  # the Xiamen store's language

    big = [("photos", ("p.jpg", b"\xff" * (9 * 1024 * 1024), "image/jpeg"))] * 4
    answer = http.post(link, data={"csrf": csrf, **GOOD}, files=big, timeout=30)
    assert answer.status_code == 413

    assert http.post(link, data=GOOD, timeout=10).status_code == 403  # no CSRF token

    wrong = {"csrf": csrf, **GOOD, "rating": "7", "agree": ""}
    answer = http.post(link, data=wrong, timeout=10)
    assert answer.status_code == 422
    assert "请选择 1 到 5 颗星。" in answer.text and "请勾选以表示同意" in answer.text
    fake = [("photos", ("a.jpg", b"not a photo at all", "image/jpeg"))]
    answer = http.post(link, data={"csrf": csrf, **GOOD}, files=fake, timeout=10)
    assert answer.status_code == 422 and "a.jpg" in answer.text
    assert _kept(shop) == 0

    head, _, signature = link.rpartition(".")
    altered = head + "." + signature[::-1]
    assert requests.get(altered, timeout=10).status_code == 404

    # five failures on this link so far (413 is answered before counting): the next waits
    for _ in range(2):
        assert http.post(link, data={"csrf": csrf, **wrong}, timeout=10).status_code == 422
    assert http.post(link, data={"csrf": csrf, **GOOD}, timeout=10).status_code == 429
    assert _kept(shop) == 0


def test_two_answers_at_once_keep_one(
    shop: Site, serve: Callable[[Site], Tracker], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(shop)
    link = _link(shop, "R-2", monkeypatch)
    sessions = [_form(link) for _ in range(2)]
    statuses: list[int] = []
    photo = [("photos", ("p.jpg", gps_jpeg(800, 600), "image/jpeg"))]

    def send(pair: tuple[requests.Session, str]) -> None:
        http, csrf = pair
        answer: Any = http.post(link, data={"csrf": csrf, **GOOD}, files=photo, timeout=30)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=send, args=(pair,)) for pair in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 410]
    assert _kept(shop) == 1
    folders = list((shop.settings.var_dir / "testimonials").iterdir())
    assert len(folders) == 1 and [p.name for p in folders[0].iterdir()] == ["1.jpg"]
