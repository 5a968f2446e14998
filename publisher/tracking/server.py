"""The tracker: a plain ASGI application served by granian.

Pages and forms people use (login, the till, personal offer codes) are a Starlette app
(:mod:`publisher.web`) that this one hands their paths to; the redirect never goes through it.

``GET /go/<code>`` is the hot path: the code's target comes from an in-memory cache (codes never
change once stored; a miss asks the database once), the click is appended to this process's
journal and flushed to the operating system, then the 302 goes out. No database write happens
on that path; ``ingest`` moves journalled clicks into the database in batches.

The redirect target is only ever the stored one: nothing in the request reaches ``Location``
except the click id this process made.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import mimetypes
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from publisher import db, processes
from publisher import settings as settings_mod
from publisher.db import insert_on_conflict
from publisher.settings import Secret, Settings
from publisher.shop import paths, personal
from publisher.shop.context import CLICK_COOKIE, Shop
from publisher.shop.guard import Guard
from publisher.shop.redeem import read_code
from publisher.tracking import bots, codes, conversions, optout
from publisher.tracking.journal import Journal, journal_dir
from publisher.tracking.schema import links, optouts, salts
from publisher.web.app import WEB_PREFIXES, create_web_app

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CLICK_PARAM = "sl_cid"
CLICK_COOKIE_DAYS = 30
MAX_BODY = 64 * 1024
MISS_TTL = 60.0
MISS_LIMIT = 50_000
FAILURE_WINDOW = 600.0
FAILURES_BEFORE_429 = 5
MAX_CLIENTS_TRACKED = 10_000
PRIVATE_FILES = frozenset({"storyloop-manifest.json"})
SAFE_URL_CHARS = "!#$%&'()*+,-./:;=?@[]~_"

NOT_FOUND_PAGE = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>Link not found</title>"
    b"<h1>This link does not exist</h1><p>It may have been mistyped. "
    b'<a href="/">Go to the home page</a>.</p></html>'
)
HTML_TYPE = (b"content-type", b"text/html; charset=utf-8")
JSON_TYPE = (b"content-type", b"application/json")


def redirect_parts(target: str) -> tuple[str, str]:
    """(everything up to where the click id goes, the fragment), percent-encoded to ASCII."""
    safe = quote(target, safe=SAFE_URL_CHARS)
    base, hash_mark, fragment = safe.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{CLICK_PARAM}=", f"{hash_mark}{fragment}"


class Salts:
    """Today's salt for reader hashes, made once per day and shared through the database.

    A reader's hash is keyed BLAKE2b of their address and user agent under the salt: the keyed
    state is made once a day and copied per click (copying costs a tenth of keying)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.day_number = -1
        self.salt = b""
        self._keyed = hashlib.blake2b(digest_size=16)

    def today(self, now: float | None = None) -> bytes:
        day_number = int((time.time() if now is None else now) // 86400)
        if day_number != self.day_number:
            day = datetime.fromtimestamp(day_number * 86400, UTC).strftime("%Y-%m-%d")
            try:
                salt = self._load(day)
            except SQLAlchemyError as exc:  # keep redirecting; readers may count twice today
                log.error("cannot share today's reader salt through the database: %s", exc)
                salt = secrets.token_hex(16)
            self.salt, self.day_number = salt.encode(), day_number
            self._keyed = hashlib.blake2b(key=self.salt, digest_size=16)
        return self.salt

    def reader(self, identity: bytes, now: float) -> str:
        """The day's hash of a reader's ``address + b"\\n" + user agent``."""
        if int(now // 86400) != self.day_number:
            self.today(now)
        keyed = self._keyed.copy()
        keyed.update(identity)
        return keyed.hexdigest()

    def _load(self, day: str) -> str:
        with self.engine.begin() as conn:
            row = {"day": day, "salt": secrets.token_hex(16)}
            conn.execute(insert_on_conflict(conn, salts, values=row))
            return str(conn.execute(select(salts.c.salt).where(salts.c.day == day)).scalar_one())


class Tracker:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        tracking = settings.engine.tracking
        self.settings = settings
        self.engine = engine
        self.journal = Journal(journal_dir(settings.var_dir), fsync=tracking.journal_fsync)
        self.salts = Salts(engine)
        self.targets: dict[str, tuple[bytes, bytes]] = {}
        self.misses: dict[str, float] = {}
        self.site_root = settings.output_path.resolve()
        self.api_token: Secret | None = tracking.api_token
        self.signing_key = optout.signing_key(settings)
        if self.signing_key is None:
            log.warning("no STORYLOOP_SIGNING_KEY: unsubscribe links are refused until it is set")
        self.currency = conversions.default_currency(settings)
        self.stores = conversions.stores(settings)
        self.behind_proxy = tracking.behind_proxy
        self.min_free_bytes = int(tracking.journal_min_free_mb * 1024 * 1024)
        self.shop = Shop.from_settings(settings)
        self.web = create_web_app(settings, engine, self.shop)
        self.guard: Guard = self.web.state.guard
        # /go/ remembers the click on the tracker's own host, so a personal code claimed there
        # later is credited to the post that brought the reader (first-party, HttpOnly)
        cookie = f"; Path=/; Max-Age={CLICK_COOKIE_DAYS * 86400}; HttpOnly; SameSite=Lax"
        self.click_cookie = (f"{CLICK_COOKIE}=".encode(), cookie.encode())
        if self.shop.https:
            self.click_cookie = (self.click_cookie[0], self.click_cookie[1] + b"; Secure")
        self.qr_codes: dict[str, str] = {}

    # ------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/go/"):
            await self.go(scope, send, path[4:], method)
        elif path == "/healthz":
            await send_json(send, 200, self.health())
        elif path == "/api/conversions":
            await self.api(scope, receive, send, self._conversion)
        elif path == "/api/redemptions":
            await self.api(scope, receive, send, self._redemption, guarded=True)
        elif path == "/unsubscribe":
            await self.unsubscribe(scope, receive, send)
        elif path.startswith("/qr/"):
            await self.qr(scope, send, path[4:], method)
        elif path.startswith(WEB_PREFIXES):
            await self.web(scope, receive, send)  # type: ignore[arg-type]
        elif method in ("GET", "HEAD"):
            await self.static(send, path, method)
        else:
            await respond(send, 405, b"method not allowed", (b"allow", b"GET, HEAD"))

    def health(self) -> dict[str, Any]:
        """``ok``, or ``degraded`` while clicks cannot be journalled (this process's writes
        failed, or the journal's disk is nearly full). Always HTTP 200: the links still
        redirect, and a load balancer must not take the tracker away for it."""
        journal = self.journal.health()
        free = journal["free_bytes"]
        low = free is not None and free < self.min_free_bytes
        status = "ok" if journal["writing"] and not low else "degraded"
        return {"status": status, "journal": journal}

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.get_running_loop().run_in_executor(None, self.salts.today)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.journal.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------ /go/<code>

    async def go(self, scope: Scope, send: Send, code: str, method: str) -> None:
        parts = self.targets.get(code)
        if parts is None:
            parts = await self._resolve(code)
            if parts is None:
                await respond(send, 404, NOT_FOUND_PAGE, HTML_TYPE)
                return
        if method not in ("GET", "HEAD"):
            await respond(send, 405, b"method not allowed", (b"allow", b"GET, HEAD"))
            return
        click_id = self._journal(scope, code, method).encode()
        location = parts[0] + click_id + parts[1]
        cookie = self.click_cookie[0] + click_id + self.click_cookie[1]
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [
                    (b"location", location),
                    (b"content-length", b"0"),
                    (b"cache-control", b"no-store"),
                    (b"set-cookie", cookie),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def qr(self, scope: Scope, send: Send, slug: str, method: str) -> None:
        """A story page's QR code: a tracked link of the ``site`` channel, made on first use."""
        code = self.qr_codes.get(slug)
        if code is None:
            code = await asyncio.get_running_loop().run_in_executor(None, self._qr_link, slug)
            if code is None:
                await respond(send, 404, NOT_FOUND_PAGE, HTML_TYPE)
                return
            self.qr_codes[slug] = code
        await self.go(scope, send, code, method)

    def _qr_link(self, slug: str) -> str | None:
        offer = self.shop.book.get(slug)
        if offer is None or not offer.url:
            return None
        with self.engine.begin() as conn:
            return personal.site_qr_link(conn, offer)

    async def _resolve(self, code: str) -> tuple[bytes, bytes] | None:
        if not codes.is_link_code(code):
            return None
        missed = self.misses.get(code)
        if missed is not None and time.monotonic() - missed < MISS_TTL:
            return None
        target = await asyncio.get_running_loop().run_in_executor(None, self._lookup, code)
        if target is None:
            if len(self.misses) >= MISS_LIMIT:
                self.misses.clear()
            self.misses[code] = time.monotonic()
            return None
        head, tail = redirect_parts(target)
        parts = (head.encode("ascii"), tail.encode("ascii"))
        self.targets[code] = parts
        return parts

    def _lookup(self, code: str) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(links.c.target).where(links.c.code == code)).scalar()
        return str(found) if found is not None else None

    def _journal(self, scope: Scope, code: str, method: str) -> str:
        agent = referer = forwarded = b""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value
            elif name == b"referer":
                referer = value
            elif name == b"x-forwarded-for":
                forwarded = value
        now = time.time()
        bot = bots.bot_name(agent.decode("latin-1"))
        reader = None
        if method == "HEAD":
            kind = "head"
        elif bot:
            kind = "bot"
        else:
            kind = "reader"
            reader = self.salts.reader(self._address(scope, forwarded) + b"\n" + agent, now)
        host = referrer_host(referer.decode("latin-1")) if referer else None
        return self.journal.record(code, kind, bot, reader, host, now)

    def _address(self, scope: Scope, forwarded: bytes) -> bytes:
        """The reader's address: the peer's, or behind our own proxy the one it appended last
        to X-Forwarded-For (earlier entries are whatever the client chose to send)."""
        if self.behind_proxy and forwarded:
            return forwarded.rsplit(b",", 1)[-1].strip()
        client = scope.get("client") or ("", 0)
        return str(client[0]).encode()

    # ------------------------------------------------------------------ APIs

    async def api(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        handler: Callable[[Scope, Any], tuple[int, dict[str, Any]]],
        *,
        guarded: bool = False,
    ) -> None:
        """Auth, body and JSON; ``guarded`` APIs slow down and then refuse repeated failures."""
        if scope["method"] != "POST":
            await respond(send, 405, b"method not allowed", (b"allow", b"POST"))
            return
        if not self._authorised(scope):
            await send_json(send, 401, {"error": "missing or wrong bearer token"})
            return
        body = None if _declared_length(scope) > MAX_BODY else await read_body(receive)
        if body is None:
            await send_json(send, 413, {"error": "the body is larger than 64 KiB"})
            return
        try:
            payload = json.loads(body)
        except RecursionError:
            await send_json(send, 400, {"error": "the JSON is nested too deeply"})
            return
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if payload is None:
            await send_json(send, 422, {"errors": {"body": "must be a JSON object (≤ 64 KiB)"}})
            return
        keys = self._guard_keys(payload) if guarded else ()
        retry = await self.guard.wait(*keys) if guarded else 0
        if guarded and retry:
            await send_json(send, 429, {"error": "too many failed attempts"}, retry_after=retry)
            return
        loop = asyncio.get_running_loop()
        status, answer = await loop.run_in_executor(None, handler, scope, payload)
        if guarded and status == 422:
            await asyncio.sleep(await self.guard.fail(*keys))
        await send_json(send, status, answer)

    def _guard_keys(self, payload: Any) -> tuple[str, ...]:
        """Guessing protection per account (the API token is one account) and per code, not
        per address: several tills behind one NAT keep working."""
        raw = payload.get("code") if isinstance(payload, dict) else None
        code = read_code(raw, self.shop.prefix)[0] if isinstance(raw, str) else None
        return ("account:api", f"code:{code}") if code else ("account:api",)

    def _authorised(self, scope: Scope) -> bool:
        if not self.api_token:
            return False
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
        expected = b"Bearer " + self.api_token.reveal().encode()
        return secrets.compare_digest(given, expected)

    def _conversion(self, _scope: Scope, payload: Any) -> tuple[int, dict[str, Any]]:
        try:
            with self.engine.begin() as conn:
                fresh = conversions.record_online(conn, payload, self.currency)
        except conversions.InvalidConversion as exc:
            return 422, {"errors": exc.errors}
        return (201, {"status": "recorded"}) if fresh else (200, {"status": "duplicate"})

    def _redemption(self, _scope: Scope, payload: Any) -> tuple[int, dict[str, Any]]:
        """In-shop sales keyed by store and receipt (``order_id`` or ``receipt``), checked
        against the offer's rules like the till's."""
        if not isinstance(payload, dict):
            return 422, {"errors": {"body": "must be a JSON object"}}
        try:
            with self.engine.begin() as conn:
                outcome = paths.record(
                    conn,
                    self.shop,
                    payload,
                    self.stores,
                    self.currency,
                    source="api",
                    account="api",
                )
        except conversions.InvalidConversion as exc:
            return 422, {"errors": exc.errors}
        answer: dict[str, Any] = {"status": outcome.status.value}
        if outcome.warnings:
            answer["warnings"] = [w.sentence() for w in outcome.warnings]
        return (201 if outcome.status.value == "recorded" else 200), answer

    # ------------------------------------------------------------------ unsubscribe

    async def unsubscribe(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("t") or [""])[0]
        # without a real key, a token proves nothing: anyone can sign with the development key
        email = optout.read_token(token, self.signing_key) if self.signing_key else None
        if email is None:
            page = page_html("Link not valid", "This unsubscribe link is not valid.")
            await respond(send, 400, page, HTML_TYPE)
            return
        if scope["method"] == "POST":
            await read_body(receive)
            await asyncio.get_running_loop().run_in_executor(None, self._opt_out, email)
            page = page_html("Unsubscribed", f"{email} will get no more newsletters.")
            await respond(send, 200, page, HTML_TYPE)
        elif scope["method"] in ("GET", "HEAD"):
            action = html.escape(f"/unsubscribe?t={quote(token)}")
            form = (
                f'<form method="post" action="{action}">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                f"<button>Unsubscribe {html.escape(email)}</button></form>"
            )
            await respond(send, 200, page_html("Unsubscribe", form, raw=True), HTML_TYPE)
        else:
            await respond(send, 405, b"method not allowed", (b"allow", b"GET, POST"))

    def _opt_out(self, email: str) -> None:
        with self.engine.begin() as conn:
            row = {"email": email.lower(), "at": datetime.now(UTC)}
            conn.execute(insert_on_conflict(conn, optouts, values=row))

    # ------------------------------------------------------------------ static site

    async def static(self, send: Send, path: str, method: str) -> None:
        found = static_file(self.site_root, path)
        if found is None:
            themed = self.site_root / "404.html"  # the theme's, when the site has one
            page = themed.read_bytes() if themed.is_file() else NOT_FOUND_PAGE
            await respond(send, 404, b"" if method == "HEAD" else page, HTML_TYPE)
            return
        body = found.read_bytes()
        kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        headers = [(b"content-type", kind.encode())]
        await respond(send, 200, b"" if method == "HEAD" else body, *headers, length=len(body))


def static_file(root: Path, path: str) -> Path | None:
    """The file under ``root`` a URL path names (index.html for folders), never outside it."""
    if "\x00" in path or "\\" in path:
        return None
    candidate = (root / path.lstrip("/")).resolve()
    if not candidate.is_relative_to(root):
        return None
    if candidate.is_dir():
        candidate = candidate / "index.html"
    if not candidate.is_file() or _private(candidate.relative_to(root)):
        return None
    return candidate


def _private(relative: Path) -> bool:
    """The manifest (schedules, channels, texts not yet public) and dot files (the build's own
    temporary files) are never served, whatever the site folder holds (``.well-known/`` is)."""
    hidden = [p for p in relative.parts if p.startswith(".") and p != ".well-known"]
    return relative.name in PRIVATE_FILES or bool(hidden)


HOST_RE = re.compile(r"[a-z0-9.\-]{1,255}")


def referrer_host(referer: str) -> str | None:
    """Only the referrer's host is kept (and only if it looks like one)."""
    try:
        host = urlsplit(referer).hostname
    except ValueError:
        return None
    return host if host and HOST_RE.fullmatch(host) else None


def page_html(title: str, text: str, *, raw: bool = False) -> bytes:
    body = text if raw else html.escape(text)
    return (
        "<!doctype html><html><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1><p>{body}</p></html>"
    ).encode()


def _declared_length(scope: Scope) -> int:
    """The Content-Length the client announced (0 when absent or unreadable)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def read_body(receive: Receive) -> bytes | None:
    """The request body, or None when it is larger than MAX_BODY."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    return b"".join(chunks)


async def respond(
    send: Send, status: int, body: bytes, *headers: tuple[bytes, bytes], length: int | None = None
) -> None:
    size = str(len(body) if length is None else length).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", size)],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, data: dict[str, Any], *, retry_after: int | None = None
) -> None:
    headers = [JSON_TYPE]
    if retry_after:
        headers.append((b"retry-after", str(retry_after).encode()))
    body = json.dumps(data, ensure_ascii=False).encode()
    await respond(send, status, body, *headers)


def create_app(settings_path: str | None = None) -> Tracker:
    """The app granian serves (factory): settings from STORYLOOP_SETTINGS or ./pelicanconf.py."""
    processes.die_with_parent()  # a worker of `storyloop serve` ends when serve is killed
    settings = settings_mod.load(settings_path or os.environ.get("STORYLOOP_SETTINGS"))
    engine = db.connect(settings.database_url)
    return Tracker(settings, engine)
