"""The reader's pages: an offer with its "get my code" form, and the code to show at the till.

Both live on the tracker's host, where ``/go/`` set the ``sl_cid`` cookie: first-party, so no
third-party cookie is needed to know which post brought the reader.
"""

from __future__ import annotations

import secrets
from types import SimpleNamespace

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher import qrcodes
from publisher.shop import personal
from publisher.shop.context import CLICK_COOKIE, READER_COOKIE, Shop
from publisher.shop.redeem import read_code
from publisher.web.pages import render
from publisher.web.security import checked_form

READER_COOKIE_DAYS = 365


def _shop(request: Request) -> Shop:
    shop: Shop = request.app.state.shop
    return shop


def _reader(request: Request) -> str | None:
    value = request.cookies.get(READER_COOKIE)
    return value if value and value.isascii() and 16 <= len(value) <= 64 else None


def not_found(request: Request, lang: str | None = None) -> Response:
    return render(request, "not_found.html", lang=lang, status=404)


async def offer_page(request: Request) -> Response:
    shop = _shop(request)
    slug = request.path_params["slug"]
    offer = await run_in_threadpool(shop.book.get, slug)
    if offer is None:
        return not_found(request)
    reader = _reader(request)
    engine = request.app.state.engine

    def mine() -> dict[str, str]:
        with engine.connect() as conn:
            return personal.codes_of(conn, reader) if reader else {}

    existing = (await run_in_threadpool(mine)).get(slug)
    context = {
        "offer": offer,
        "existing": existing,
        "store_names": _names(shop, offer.stores),
        "site_zone": _site_zone(request),
    }
    return render(request, "offer.html", context, lang=_lang(request, offer.lang))


def _site_zone(request: Request) -> SimpleNamespace:
    return SimpleNamespace(timezone=request.app.state.settings.timezone)


def _lang(request: Request, preferred: str | None) -> str:
    from publisher.web.pages import language

    return language(request, preferred)


def _names(shop: Shop, ids: tuple[str, ...]) -> list[str]:
    return [shop.stores[s].name if s in shop.stores else s for s in ids]


async def claim(request: Request) -> Response:
    await checked_form(request)
    shop = _shop(request)
    slug = request.path_params["slug"]
    offer = await run_in_threadpool(shop.book.get, slug)
    if offer is None:
        return not_found(request)
    reader = _reader(request) or secrets.token_urlsafe(18)
    click = request.cookies.get(CLICK_COOKIE)
    engine = request.app.state.engine

    def make() -> personal.Claimed:
        with engine.begin() as conn:
            return personal.claim(conn, offer, reader, click, shop.prefix)

    claimed = await run_in_threadpool(make)
    response = RedirectResponse(f"/code/{claimed.code}", status_code=303)
    response.set_cookie(
        READER_COOKIE,
        reader,
        max_age=READER_COOKIE_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=shop.https,
    )
    return response


async def code_page(request: Request) -> Response:
    shop = _shop(request)
    code, _ = read_code(request.path_params["code"], shop.prefix)
    if code is None:
        return not_found(request)
    engine = request.app.state.engine

    def load() -> tuple[str, str, str] | None:
        from sqlalchemy import select

        from publisher.shop.schema import personal_codes as table

        with engine.connect() as conn:
            row = conn.execute(
                select(table.c.offer_story, table.c.offer, table.c.code).where(table.c.code == code)
            ).first()
        return (str(row[0]), str(row[1]), str(row[2])) if row else None

    found = await run_in_threadpool(load)
    if found is None:
        return not_found(request)
    slug, text, code = found
    offer = await run_in_threadpool(shop.book.get, slug)
    context = {
        "code": code,
        "offer_text": offer.text if offer else text,
        "offer": offer,
        "store_names": _names(shop, offer.stores) if offer else [],
        "qr": qrcodes.data_uri(qrcodes.svg(code)),
        "site_zone": _site_zone(request),
    }
    return render(request, "code.html", context, lang=_lang(request, offer.lang if offer else None))
