"""The tracker as a real granian process: redirects, the attack corpus, HEAD and bots, the
static site, unsubscribe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from publisher.settings import Secret
from publisher.tracking import optouts
from publisher.tracking.optout import make_token
from tests.tracking.trackkit import (
    SIGNING_KEY,
    Served,
    click_kinds,
    ingest_now,
    raw_request,
    request,
    serve_site,
)

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = serve_site(tmp_path_factory.mktemp("tracker") / "site")
    yield served
    served.tracker.kill()
    served.site.engine.dispose()


def _story_url(served: Served) -> str:
    return f"http://127.0.0.1:{served.site.port}/stories/kitchen.html"


def _code(served: Served) -> str:
    return served.links.get(_story_url(served)).rsplit("/", 1)[1]


def test_go_answers_302_to_the_stored_target_with_a_click_id(served: Served) -> None:
    answer = request(served.site.port, "GET", f"/go/{_code(served)}", {"User-Agent": BROWSER})
    assert answer.status == 302
    location = urlsplit(answer.headers["location"])
    assert location.netloc == f"127.0.0.1:{served.site.port}"
    assert location.path == "/stories/kitchen.html"
    query = parse_qs(location.query)
    assert query["utm_source"] == ["mastodon"]
    assert query["sl_cid"][0].startswith(_code(served) + ".")


def test_each_click_gets_its_own_click_id(served: Served) -> None:
    ids = {
        request(served.site.port, "GET", f"/go/{_code(served)}").headers["location"]
        for _ in range(5)
    }
    assert len(ids) == 5


ATTACKS = [
    "/go/%2F%2Fevil.example",
    "/go//evil.example",
    "/go/%5C%5Cevil.example",
    "/go/\\\\evil.example",
    "/go/{code}%0D%0ALocation:%20http://evil.example",
    "/go/{code}%2Fhttp%3A%2F%2Fevil.example",
    "/go/{code}/..%2F..%2Fevil.example",
    "/go/{code}%00",
    "/go/{code}/",
    "/go/" + "A" * 4000,
    "/go/" + quote("кодкодкод1"),
    "/go/" + quote("ａｂｃｄｅｆｇｈｉｊ"),
    "/go/%E2%80%AE" + "abcdefghij",
    "/go/https:%2F%2Fevil.example",
    "/go/?url=http://evil.example",
    "/go/nosuchcode1?url=http://evil.example",
    "//evil.example/go/{code}",
]


@pytest.mark.parametrize("target", ATTACKS)
def test_attack_never_redirects_anywhere_but_a_stored_target(served: Served, target: str) -> None:
    answer = request(served.site.port, "GET", target.format(code=_code(served)))
    assert answer.status in (400, 404, 405), answer
    assert "location" not in answer.headers
    assert b"evil" not in answer.body


def test_a_url_parameter_is_ignored_and_the_stored_target_used(served: Served) -> None:
    answer = request(served.site.port, "GET", f"/go/{_code(served)}?url=http://evil.example")
    assert answer.status == 302
    assert urlsplit(answer.headers["location"]).netloc == f"127.0.0.1:{served.site.port}"
    assert "evil" not in answer.headers["location"]


def test_raw_crlf_in_the_request_line_cannot_inject_a_header(served: Served) -> None:
    raw = (
        f"GET /go/{_code(served)}\r\nLocation: http://evil.example HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
    ).encode()
    answer = raw_request(served.site.port, raw)
    assert "evil" not in answer.headers.get("location", "")


def test_unknown_code_gets_an_html_404_page(served: Served) -> None:
    answer = request(served.site.port, "GET", "/go/Zz9Zz9Zz9Z")
    assert answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert b"does not exist" in answer.body


def test_head_and_bots_are_answered_but_never_counted_as_readers(served: Served) -> None:
    port, path = served.site.port, f"/go/{_code(served)}"
    ingest_now(served.site)
    before = click_kinds(served.site)
    assert request(port, "HEAD", path).status == 302
    for agent in (
        "http.rb/5.1.1 (Mastodon/4.2.0; +https://mastodon.social/)",
        "TelegramBot (like TwitterBot)",
        "curl/8.5.0",
        "",
    ):
        assert request(port, "GET", path, {"User-Agent": agent}).status == 302
    wechat = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.47"
    assert request(port, "GET", path, {"User-Agent": wechat}).status == 302
    ingest_now(served.site)
    after = click_kinds(served.site)
    assert after.get("head", 0) - before.get("head", 0) == 1
    assert after.get("bot", 0) - before.get("bot", 0) == 4
    assert after.get("reader", 0) - before.get("reader", 0) == 1


def test_healthz(served: Served) -> None:
    assert request(served.site.port, "GET", "/healthz").status == 200


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/", "text/html"), ("/stories/kitchen.html", "text/html"), ("/style.css", "text/css")],
)
def test_the_static_site_is_served_with_its_content_types(
    served: Served, path: str, kind: str
) -> None:
    answer = request(served.site.port, "GET", path)
    assert answer.status == 200
    assert answer.headers["content-type"].startswith(kind)


@pytest.mark.parametrize(
    "path",
    ["/../pelicanconf.py", "/%2e%2e/pelicanconf.py", "/..%2fpelicanconf.py", "/nothing.html"],
)
def test_nothing_outside_the_site_folder_is_served(served: Served, path: str) -> None:
    answer = request(served.site.port, "GET", path)
    assert answer.status in (400, 404)
    assert b"STORYLOOP" not in answer.body


def test_a_missing_page_gets_the_sites_own_404_page(served: Served) -> None:
    answer = request(served.site.port, "GET", "/stories/gone.html")
    assert answer.status == 404 and "Page not found" in answer.body.decode()
    assert request(served.site.port, "HEAD", "/stories/gone.html").body == b""


def test_one_click_unsubscribe_records_the_opt_out(served: Served) -> None:
    token = make_token("Reader@Example.com", Secret(SIGNING_KEY))
    port = served.site.port
    page = request(port, "GET", f"/unsubscribe?t={token}")
    assert page.status == 200 and b"<form" in page.body
    assert "reader@example.com" not in optouts(served.site.engine)
    body = b"List-Unsubscribe=One-Click"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = request(port, "POST", f"/unsubscribe?t={token}", headers, body)
    assert answer.status == 200
    assert "reader@example.com" in optouts(served.site.engine)


def test_a_forged_unsubscribe_token_is_refused(served: Served) -> None:
    forged = make_token("someone@example.com", Secret("not the key"))
    answer = request(served.site.port, "POST", f"/unsubscribe?t={forged}", body=b"x=1")
    assert answer.status == 400
    assert "someone@example.com" not in optouts(served.site.engine)


def test_head_on_a_site_page_answers_headers_without_a_body(served: Served) -> None:
    answer = request(served.site.port, "HEAD", "/stories/kitchen.html")
    assert answer.status == 200
    assert answer.body == b""
    assert answer.headers["content-type"].startswith("text/html")


def _readers_after(served: Served, forwarded_for: list[str]) -> int:
    from publisher.tracking import report

    code = _code(served)
    for address in forwarded_for:
        headers = {"User-Agent": BROWSER, "X-Forwarded-For": address}
        assert request(served.site.port, "GET", f"/go/{code}", headers).status == 302
    ingest_now(served.site)
    return report.build(served.site.engine, ("story",)).totals.unique_readers


def test_forwarded_for_is_ignored_unless_the_tracker_is_behind_our_proxy(served: Served) -> None:
    before = _readers_after(served, [])
    assert _readers_after(served, ["203.0.113.1", "203.0.113.2"]) - before <= 1


def test_behind_a_proxy_readers_are_told_apart_by_the_address_it_appends(
    tmp_path: Path,
) -> None:
    served = serve_site(tmp_path / "site", behind_proxy=True)
    try:
        spoofed = ["198.51.100.7, 203.0.113.1", "203.0.113.1", "203.0.113.2"]
        assert _readers_after(served, spoofed) == 2
    finally:
        served.tracker.kill()
        served.site.engine.dispose()
