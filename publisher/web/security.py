"""Who is asking, and may they: the session's account, CSRF tokens, ``require_role``.

Sessions are Starlette's signed cookie (itsdangerous): it holds the account name, the account's
session version (a new password ends old sessions) and the CSRF token. The cookie is HttpOnly
and SameSite=Lax, and Secure when the tracker is reached over https.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.errors import StoryloopError
from publisher.web import accounts
from publisher.web.accounts import Account

CSRF_FIELD = "csrf"
Endpoint = Callable[[Request], Awaitable[Response]]


class Forbidden(StoryloopError):
    """The request may not do this; ``reason`` is shown to the person."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def csrf_token(request: Request) -> str:
    """This session's token, made on first use."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session[CSRF_FIELD] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, after its CSRF token matched the session's."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    expected = request.session.get(CSRF_FIELD)
    if (
        not isinstance(given, str)
        or not isinstance(expected, str)
        or not hmac.compare_digest(given.encode(), expected.encode())
    ):
        raise Forbidden("csrf")
    return form


async def current_account(request: Request) -> Account | None:
    """The signed-in account, if its session is still valid (account exists, same password)."""
    cached = request.scope.get("storyloop.account", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    name = request.session.get("account")
    found: Account | None = None
    if isinstance(name, str):
        engine = request.app.state.engine

        def load() -> Account | None:
            with engine.connect() as conn:
                return accounts.get(conn, name)

        found = await run_in_threadpool(load)
        if found is None or found.session_version != request.session.get("version"):
            request.session.pop("account", None)
            found = None
    request.scope["storyloop.account"] = found
    return found


def sign_in(request: Request, account: Account) -> None:
    """A fresh session for ``account`` (a new CSRF token too: nothing carries over)."""
    request.session.clear()
    request.session["account"] = account.name
    request.session["version"] = account.session_version
    csrf_token(request)


def require_role(*roles: str) -> Callable[[Endpoint], Endpoint]:
    """Endpoint decorator: signed in, with one of ``roles`` (none given: any role).

    Without a session the browser is sent to the login page and comes back afterwards."""

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            account = await current_account(request)
            if account is None:
                target = request.url.path
                return RedirectResponse(f"/login?next={target}", status_code=303)
            if roles and account.role not in roles:
                raise Forbidden("role")
            request.state.account = account
            return await endpoint(request)

        return guarded

    return decorate


def safe_next(target: Any) -> str:
    """Where to go after logging in: only a path on this host, never another site."""
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(31 < ord(c) < 127 for c in target)
    ):
        return target
    return "/till"
