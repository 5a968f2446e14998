"""Accounts, sessions, CSRF and login throttling, against a real ``storyloop serve``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from publisher.web.schema import accounts
from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import PASSWORD, Browser, add_user, open_shop, storyloop


def test_user_add_stores_an_argon2_hash_and_list_shows_role_and_store(shop: Site) -> None:
    add_user(shop, "mia", "staff", "berlin-1")
    add_user(shop, "lin", "owner")
    with shop.engine.connect() as conn:
        stored = conn.execute(select(accounts.c.password_hash).where(accounts.c.name == "mia"))
        hashed = stored.scalar_one()
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    listed = storyloop(shop, "user", "list")
    assert listed.stdout.splitlines() == ["lin\towner\t-", "mia\tstaff\tberlin-1"]


def test_user_add_refuses_bad_input_with_one_line_and_stores_nothing(shop: Site) -> None:
    cases = [
        (["user", "add", "ana", "--role", "staff"], "--store: staff need the store"),
        (["user", "add", "ana", "--role", "staff", "--store", "paris-1"], "unknown store"),
        (["user", "add", "Ana Smith", "--role", "owner"], "account name 'Ana Smith'"),
    ]
    for args, message in cases:
        done = storyloop(shop, *args, stdin=f"{PASSWORD}\n{PASSWORD}\n")
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    short = storyloop(shop, "user", "add", "ana", "--role", "owner", stdin="short\nshort\n")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    assert storyloop(shop, "user", "list").stdout.startswith("no accounts yet")


def test_login_sets_an_httponly_lax_session_and_logout_needs_the_csrf_token(
    shop: Site, serve: Callable[[Site], Tracker]
) -> None:
    add_user(shop, "mia", "staff", "berlin-1")
    serve(shop)
    browser = Browser.open(shop)
    assert browser.get("/account").headers["location"] == "/login?next=/account"
    answer = browser.login("mia")
    assert answer.status_code == 303 and answer.headers["location"] == "/till"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert "Cedar &amp; Clay Kreuzberg" in browser.get("/account").text
    refused = browser.post("/logout", {"csrf": "forged"})
    assert refused.status_code == 403 and "expired" in refused.text
    assert browser.get("/account").status_code == 200  # still signed in
    token = browser.csrf("/account")
    assert browser.post("/logout", {"csrf": token}).status_code == 303
    assert browser.get("/account").status_code == 303


def test_a_login_form_without_its_csrf_token_is_refused(
    shop: Site, serve: Callable[[Site], Tracker]
) -> None:
    add_user(shop, "mia", "staff", "berlin-1")
    serve(shop)
    browser = Browser.open(shop)
    browser.get("/login")
    answer = browser.post("/login", {"name": "mia", "password": PASSWORD})
    assert answer.status_code == 403
    assert browser.get("/account").status_code == 303


def test_logins_are_throttled_per_account_not_per_address(
    shop: Site, serve: Callable[[Site], Tracker]
) -> None:
    add_user(shop, "mia", "staff", "berlin-1")
    add_user(shop, "jonas", "staff", "berlin-1")
    serve(shop)
    guesser = Browser.open(shop)
    for _ in range(5):
        assert guesser.login("mia", "wrong password!").status_code == 401
    # the right password now waits too: the account, not the guess, is locked
    locked = Browser.open(shop).login("mia")
    assert locked.status_code == 429 and "Try again in 1 minutes" in locked.text
    # a colleague at the same till (same address) signs in as usual
    assert Browser.open(shop).login("jonas").status_code == 303


def test_a_new_password_ends_the_old_sessions(shop: Site, serve: Callable[[Site], Tracker]) -> None:
    add_user(shop, "mia", "staff", "berlin-1")
    serve(shop)
    browser = Browser.open(shop)
    browser.login("mia")
    assert browser.get("/account").status_code == 200
    new = "another long password"
    done = storyloop(shop, "user", "passwd", "mia", stdin=f"{new}\n{new}\n")
    assert done.returncode == 0, done.stderr
    assert browser.get("/account").status_code == 303
    assert Browser.open(shop).login("mia", new).status_code == 303
    assert storyloop(shop, "user", "remove", "mia").returncode == 0
    assert storyloop(shop, "user", "remove", "mia").returncode == 1


def test_pages_follow_the_language_switch_and_accept_language(
    shop: Site, serve: Callable[[Site], Tracker]
) -> None:
    serve(shop)
    browser = Browser.open(shop)
    assert "<h1>Anmelden</h1>" in browser.get("/login", headers={"Accept-Language": "de"}).text
    chosen = browser.get("/login?lang=zh")
    assert "<h1>登录</h1>" in chosen.text and 'lang="zh"' in chosen.text
    assert "<h1>登录</h1>" in browser.get("/login", headers={"Accept-Language": "de"}).text


def test_the_session_cookie_is_secure_when_the_tracker_is_reached_over_https(
    tmp_path: Path, serve: Callable[[Site], Tracker]
) -> None:
    root = tmp_path / "site"
    site = open_shop(root, f"sqlite:///{root / 'var' / 'db.sqlite'}", base_url="https://t.example")
    serve(site)
    page = Browser.open(site).get("/login")  # the form's CSRF token starts the session
    assert page.status_code == 200
    assert "; secure" in page.headers["set-cookie"].lower()
    site.engine.dispose()
