"""The testimonial invitation by email from the till, through a real aiosmtpd server on
loopback with the email channel's SMTP settings (password by reference): sent only when the
customer gives an address and agrees, the link opens the form, and the address is kept nowhere:
not in the database, not under var/, not in the tracker's log, not in an error."""

from __future__ import annotations

import email
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.channels.networks import SECRETS, SmtpServer
from tests.conftest import free_port, wait_for_port
from tests.tracking.trackkit import Site, storyloop_argv, tracker_env
from tests.web.shopkit import Browser, add_user, offer_story, open_shop, shared_code, write_manifest

ADDRESS = "jana.k@example.org"
REQUEST_RE = re.compile(r'action="/till/invite-email">.*?name="request_id" value="([^"]+)"', re.S)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(free_port()) as server:
        yield server


@pytest.fixture
def site(tmp_path: Path, smtp: SmtpServer) -> Iterator[tuple[Site, Path]]:
    root = tmp_path / "site"
    shop = open_shop(root, f"sqlite:///{root / 'var' / 'storyloop.db'}")
    mail = {
        "host": "127.0.0.1",
        "port": smtp.port,
        "starttls": False,
        "username": "shop",
        "password": {"env": "STORYLOOP_TEST_SMTP_PASSWORD"},
        "sender": "Cedar & Clay <hello@cedar.example>",
    }
    with (root / "pelicanconf.py").open("a", encoding="utf-8") as conf:
        conf.write(f'\nSTORYLOOP["channels"]["email"] = {mail!r}\n')
    add_user(shop, "mia", "staff", "berlin-1")
    log = root / "tracker.log"
    argv = storyloop_argv(shop, "serve", "--port", str(shop.port))
    env = tracker_env() | {"STORYLOOP_TEST_SMTP_PASSWORD": SECRETS["email"]}
    with log.open("wb") as out:
        tracker = subprocess.Popen(argv, cwd=root, env=env, stdout=out, stderr=out)
        try:
            wait_for_port(shop.port)
            yield shop, log
        finally:
            tracker.kill()
            tracker.wait(timeout=30)
            shop.engine.dispose()


def _send(mia: Browser, request_id: str, **fields: str) -> requests.Response:
    data = {"csrf": mia.csrf("/till"), "store": "berlin-1", "request_id": request_id, **fields}
    return mia.post("/till/invite-email", data)


def _everything_kept(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_the_invitation_is_mailed_only_with_consent_and_the_address_is_not_kept(
    site: tuple[Site, Path], smtp: SmtpServer
) -> None:
    shop, log = site
    story = offer_story("floor", "berlin")
    write_manifest(shop, story)
    code = shared_code(shop, story, "post-1")
    mia = Browser.open(shop)
    mia.http.cookies.set("sl_lang", "en")
    assert mia.login("mia").status_code == 303
    done = mia.redeem(code, "45,50", "R-7001")
    found = REQUEST_RE.search(done.text)
    assert found, done.text
    request_id = found.group(1)

    refused = _send(mia, request_id, email=ADDRESS)  # the box not ticked
    assert refused.status_code == 422 and "tick the box when they agree" in refused.text
    mistyped = _send(mia, request_id, email="jana at example", agree="yes")
    assert mistyped.status_code == 422 and "email address, e.g." in mistyped.text
    assert smtp.mailbox.envelopes == []

    sent = _send(mia, request_id, email=f"  {ADDRESS} ", agree="yes")
    assert sent.status_code == 200 and "The invitation was sent." in sent.text
    (envelope,) = smtp.mailbox.envelopes
    assert envelope.rcpt_tos == [ADDRESS]
    letter = email.message_from_bytes(envelope.content)
    assert letter["Subject"] == "Tell us about your visit to Cedar & Clay Kreuzberg"
    payload = letter.get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    (link,) = re.findall(r"http://\S+/testimonial/\S+", body)
    form = Browser.open(shop).http.get(link, timeout=10)
    assert form.status_code == 200 and 'name="rating"' in form.text

    smtp.stop()  # the server goes away: said plainly, and still nothing kept
    failed = _send(mia, request_id, email=ADDRESS, agree="yes")
    assert failed.status_code == 502 and "did not take the message" in failed.text
    assert ADDRESS not in failed.text

    assert b"cannot send through SMTP server 127.0.0.1" in log.read_bytes()  # said, no address
    kept = _everything_kept(shop.root / "var") + log.read_bytes()
    assert ADDRESS.encode() not in kept and b"jana" not in kept
    assert SECRETS["email"].encode() not in kept
