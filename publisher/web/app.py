"""The web layer: pages, forms and JSON APIs people use, served by Starlette beside ``/go/``.

:class:`publisher.tracking.server.Tracker` keeps the redirect hot path to itself and hands every
path in :data:`WEB_PREFIXES` to the app :func:`create_web_app` makes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from publisher.consent import links as withdrawal_links
from publisher.customers import invites
from publisher.dashboard.web import routes as dashboard_routes
from publisher.settings import Settings
from publisher.shop.context import Shop
from publisher.shop.guard import Guard
from publisher.tracking import optout
from publisher.web import accounts, reader, referral, shop_api, testimonial, till, withdraw
from publisher.web.accounts import Login
from publisher.web.pages import render
from publisher.web.security import (
    Forbidden,
    checked_form,
    current_account,
    require_role,
    safe_next,
    sign_in,
)

WEB_PREFIXES = (
    "/login",
    "/logout",
    "/account",
    "/till",
    "/offer/",
    "/code/",
    "/referral/",
    "/webhooks/",
    invites.PATH,
    withdrawal_links.PATH,
    "/consent",
    "/storyloop.js",
    "/web-static/",
    "/dashboard",
)
SESSION_COOKIE = "sl_session"
SESSION_HOURS = 12
STATIC = __file__.rsplit("/", 1)[0] + "/static"

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ),
]


class SecurityHeaders:
    """Adds the headers every page of the web layer carries (no framing, no inline script)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def session_key(settings: Settings) -> str:
    """``web.session_key``, else one derived from the signing key (so a site that set one
    secret gets working sessions on every worker)."""
    configured = settings.engine.web.session_key
    if configured:
        return configured.reveal()
    base = optout.signing_key(settings)
    seed = base.reveal().encode() if base else optout.DEVELOPMENT_KEY.encode()
    return hmac.new(seed, b"storyloop web session", hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- login


async def login_page(request: Request) -> Response:
    if await current_account(request):
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "login.html", {"next": safe_next(request.query_params.get("next"))})


async def login(request: Request) -> Response:
    form = await checked_form(request)
    name = str(form.get("name", "")).strip().lower()
    password = str(form.get("password", ""))
    target = safe_next(form.get("next"))
    engine: Engine = request.app.state.engine
    result = await run_in_threadpool(accounts.authenticate, engine, name, password)
    if result.outcome is Login.OK and result.account:
        sign_in(request, result.account)
        return RedirectResponse(target, status_code=303)
    context: dict[str, object] = {"next": target, "name": name, "failed": result.outcome.value}
    context["wait_minutes"] = max(1, (result.wait_seconds + 59) // 60)
    status = 429 if result.outcome is Login.WAIT else 401
    return render(request, "login.html", context, status=status)


async def logout(request: Request) -> Response:
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@require_role()
async def account_page(request: Request) -> Response:
    stores = request.app.state.stores
    return render(request, "account.html", {"stores": stores})


async def forbidden(request: Request, exc: Exception) -> Response:
    reason = exc.reason if isinstance(exc, Forbidden) else "role"
    status = exc.status if isinstance(exc, Forbidden) else 403
    return render(request, "forbidden.html", {"reason": reason}, status=status)


def routes() -> list[Route | Mount]:
    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/account", account_page, methods=["GET"]),
        Route("/till", till.till_page, methods=["GET"]),
        Route("/till/check", till.check, methods=["POST"]),
        Route("/till/confirm", till.confirm, methods=["POST"]),
        Route("/till/undo", till.undo, methods=["POST"]),
        Route("/till/reward", till.reward, methods=["POST"]),
        Route("/till/invite-email", till.invite_by_mail, methods=["POST"]),
        Route("/referral/{code}", referral.referral_page, methods=["GET"]),
        Route("/offer/{slug}", reader.offer_page, methods=["GET"]),
        Route("/offer/{slug}", reader.claim, methods=["POST"]),
        Route("/code/{code}", reader.code_page, methods=["GET"]),
        Route(invites.PATH + "{token}", testimonial.form_page, methods=["GET"]),
        Route(invites.PATH + "{token}", testimonial.submit, methods=["POST"]),
        Route(withdrawal_links.PATH + "{token}", withdraw.withdraw_page, methods=["GET"]),
        Route(withdrawal_links.PATH + "{token}", withdraw.withdraw, methods=["POST"]),
        Route("/consent", withdraw.owner_page, methods=["GET"]),
        Route("/consent/done", withdraw.owner_done, methods=["POST"]),
        Route("/storyloop.js", shop_api.script, methods=["GET", "HEAD"]),
        Route("/webhooks/shopify", shop_api.shopify_webhook, methods=["POST"]),
        Mount("/web-static", StaticFiles(directory=STATIC), name="static"),
        *dashboard_routes(),
    ]


def create_web_app(settings: Settings, engine: Engine, shop: Shop | None = None) -> Starlette:
    https = settings.tracking_base_url.startswith("https://")
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_key(settings),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_HOURS * 3600,
            same_site="lax",
            https_only=https,
        ),
    ]
    app = Starlette(
        routes=routes(), middleware=middleware, exception_handlers={Forbidden: forbidden}
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.shop = shop or Shop.from_settings(settings)
    app.state.invite_secret = invites.secret_for(session_key(settings))
    app.state.guard = Guard(engine, hmac.digest(session_key(settings).encode(), b"guard", "sha256"))
    app.state.withdraw_secret = withdrawal_links.secret_for(session_key(settings))
    app.state.stores = dict(settings.stores)
    return app
