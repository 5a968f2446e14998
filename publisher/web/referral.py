"""A customer's referral code page: the code and its QR, to keep on the phone or print, with
what a friend gets and what the customer earns (the owner's rule). Public, like the personal
code's page: the code is the only key, and the page shows nothing about the customer."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher import qrcodes
from publisher.shop.context import Shop
from publisher.shop.redeem import read_code
from publisher.tracking import referrals
from publisher.web.pages import language, render
from publisher.web.reader import _names, _site_zone, not_found


async def referral_page(request: Request) -> Response:
    shop: Shop = request.app.state.shop
    code, _ = read_code(request.path_params["code"], shop.prefix)
    rules = shop.referral_rules
    if code is None or rules is None:
        return not_found(request)
    engine = request.app.state.engine

    def load() -> referrals.Referral | None:
        with engine.connect() as conn:
            return referrals.find(conn, code)

    found = await run_in_threadpool(load)
    if found is None:
        return not_found(request)
    offer = await run_in_threadpool(shop.book.get, found.offer_story)
    store = shop.stores.get(found.store or "")
    context = {
        "code": found.code,
        "offer_text": offer.text if offer else "",
        "offer": offer,
        "store_names": _names(shop, offer.stores) if offer else [],
        "qr": qrcodes.data_uri(qrcodes.svg(found.code)),
        "site_zone": _site_zone(request),
        "rules": rules,
    }
    lang = language(request, store.locale if store else (offer.lang if offer else None))
    return render(request, "referral.html", context, lang=lang)
