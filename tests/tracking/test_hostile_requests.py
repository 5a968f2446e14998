"""Hostile requests to a real `storyloop serve` started without STORYLOOP_SIGNING_KEY: forged
unsubscribe links, JSON nested 10,000 deep, a 10 MB body, and asking for the engine's manifest."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.tracking import optouts
from publisher.tracking.optout import make_token
from tests.conftest import wait_for_port
from tests.tracking.trackkit import (
    API_TOKEN,
    Site,
    Tracker,
    open_site,
    raw_request,
    request,
    storyloop_argv,
)

AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
MANIFEST = b'{"site_url": "x", "version": 1, "stories": [{"channels": ["mastodon"]}]}'


class KeylessTracker(Tracker):
    """The tracker as an operator who forgot the signing key would run it."""

    def start(self) -> KeylessTracker:
        import os

        env = {k: v for k, v in os.environ.items() if k != "STORYLOOP_SIGNING_KEY"}
        env.update(STORYLOOP_API_TOKEN=API_TOKEN)
        env.pop("STORYLOOP_DATABASE_URL", None)
        argv = storyloop_argv(self.site, "serve", "--port", str(self.site.port))
        self.process = subprocess.Popen(
            argv, cwd=self.site.root, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.site.port)
        return self


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("hostile") / "site"
    site = open_site(root, f"sqlite:///{root / 'var' / 'storyloop.db'}")
    output = site.settings.output_path
    (output / "storyloop-manifest.json").write_bytes(MANIFEST)
    (output / ".storyloop-manifest.json.4242.next").write_bytes(MANIFEST)
    (output / ".well-known").mkdir()
    (output / ".well-known" / "security.txt").write_text("Contact: mailto:a@example.com\n")
    tracker = KeylessTracker(site).start()
    yield site
    tracker.kill()
    site.engine.dispose()


def test_without_a_signing_key_a_token_made_with_the_development_key_is_refused(
    site: Site,
) -> None:
    forged = make_token("victim@example.com", None)  # anyone can make this one
    assert request(site.port, "GET", f"/unsubscribe?t={forged}").status == 400
    answer = request(site.port, "POST", f"/unsubscribe?t={forged}", body=b"x=1")
    assert answer.status == 400
    assert "victim@example.com" not in optouts(site.engine)


@pytest.mark.parametrize("path", ["/api/conversions", "/api/redemptions"])
def test_json_nested_ten_thousand_deep_gets_400_and_the_server_goes_on(
    site: Site, path: str
) -> None:
    body = b"[" * 10_000 + b"]" * 10_000
    answer = request(site.port, "POST", path, AUTH, body)
    assert answer.status == 400, answer
    assert b"nested too deeply" in answer.body
    body = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert request(site.port, "POST", path, AUTH, body).status == 400
    assert request(site.port, "GET", "/healthz").status == 200


def _send_big(port: int, head: bytes, size: int) -> bytes:
    """Send ``head`` and then up to ``size`` bytes of body; stop when the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        chunk = b"x" * 65536
        sent = 0
        sock.settimeout(0.5)
        try:
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        sock.settimeout(10)
        data = b""
        try:
            while part := sock.recv(65536):
                data += part
        except (ConnectionResetError, TimeoutError):
            pass
    return data


@pytest.mark.parametrize("path", ["/api/conversions", "/api/redemptions"])
def test_a_ten_megabyte_body_gets_413(site: Site, path: str) -> None:
    size = 10 * 1024 * 1024
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    answer = _send_big(site.port, head, size)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_chunked_body_that_grows_past_the_limit_gets_413(site: Site) -> None:
    chunk = b"x" * 60_000
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 3 + b"0\r\n\r\n"
    head = (
        "POST /api/conversions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {API_TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    assert raw_request(site.port, head + body).status == 413


@pytest.mark.parametrize(
    "path",
    [
        "/storyloop-manifest.json",
        "/storyloop-manifest.json/",
        "/%73toryloop-manifest.json",
        "/./storyloop-manifest.json",
        "/stories/../storyloop-manifest.json",
        "/.storyloop-manifest.json.4242.next",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_manifest_and_dot_files_are_not_served(site: Site, path: str, method: str) -> None:
    answer = request(site.port, method, path)
    assert answer.status == 404, (path, answer.status)
    assert b"mastodon" not in answer.body


def test_the_site_and_well_known_files_are_still_served(site: Site) -> None:
    assert request(site.port, "GET", "/stories/kitchen.html").status == 200
    assert request(site.port, "GET", "/.well-known/security.txt").status == 200


def test_the_check_of_served_paths_holds_for_the_static_function_too(tmp_path: Path) -> None:
    from publisher.tracking.server import static_file

    (tmp_path / "storyloop-manifest.json").write_bytes(MANIFEST)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "storyloop-manifest.json").write_bytes(MANIFEST)
    root = tmp_path.resolve()
    assert static_file(root, "/storyloop-manifest.json") is None
    assert static_file(root, "/sub/storyloop-manifest.json") is None
