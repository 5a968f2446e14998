"""The customer's withdrawal page, and the owner's page of ended consents and their copies.

``/withdraw/<token>`` is the private link the customer got after sending a testimonial: a plain
page (no JavaScript, CSRF-checked form) that says in plain words what withdrawing does, and a
button. Withdrawing records it and cancels the pending deliveries at once; the copies already
posted are taken back by the engine's next sweep. ``/consent`` shows the owner, per copy, what was
removed and what must be removed by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.consent import links, removals
from publisher.consent.schema import WITHDRAWN
from publisher.customers.pull import slug_for
from publisher.customers.records import Received, all_received
from publisher.web.pages import language, render
from publisher.web.security import checked_form, require_role


def link_for(request: Request, invite: str) -> str:
    """The customer's withdrawal link (kept, so the owner can send it again)."""
    token = links.make(request.app.state.withdraw_secret, invite)
    links.remember(request.app.state.engine, invite, token, datetime.now(UTC))
    base = str(request.app.state.settings.tracking_base_url).rstrip("/")
    return f"{base}{links.PATH}{token}"


def _testimonial(request: Request) -> Received | None:
    invite = links.read(request.app.state.withdraw_secret, request.path_params["token"])
    if invite is None:
        return None
    return next((r for r in all_received(request.app.state.engine) if r.invite == invite), None)


def _store_name(request: Request, item: Received) -> str:
    store = request.app.state.shop.stores.get(item.store)
    return str(store.name) if store is not None else item.store


def _context(request: Request, item: Received) -> dict[str, Any]:
    end = removals.ended(request.app.state.engine, [slug_for(item)]).get(slug_for(item))
    withdrawn = end if end is not None and end.reason == WITHDRAWN else None
    return {
        "item": item,
        "shop": _store_name(request, item),
        "withdrawn": withdrawn,
        "token": request.path_params["token"],
    }


async def withdraw_page(request: Request) -> Response:
    item = await run_in_threadpool(_testimonial, request)
    if item is None:
        return render(request, "withdraw.html", {"item": None}, status=404)
    context = await run_in_threadpool(_context, request, item)
    return render(request, "withdraw.html", context, lang=language(request, item.lang))


async def withdraw(request: Request) -> Response:
    item = await run_in_threadpool(_testimonial, request)
    if item is None:
        return render(request, "withdraw.html", {"item": None}, status=404)
    await checked_form(request)
    counts = await run_in_threadpool(
        removals.withdraw,
        request.app.state.engine,
        slug_for(item),
        "withdrawal link",
        datetime.now(UTC),
        item.invite,
    )
    settings = request.app.state.settings
    await run_in_threadpool(
        removals.drop_photos, request.app.state.engine, settings.var_dir, item.invite
    )
    context = {**await run_in_threadpool(_context, request, item), "counts": counts}
    return render(request, "withdraw_done.html", context, lang=language(request, item.lang))


# --------------------------------------------------------------------------- the owner's page


@require_role("owner")
async def owner_page(request: Request) -> Response:
    ends = await run_in_threadpool(removals.copies, request.app.state.engine)
    by_hand = sum(1 for _, copies in ends for c in copies if c.state == removals.BY_HAND)
    context = {"ends": ends, "by_hand": by_hand, "states": removals}
    return render(request, "consent_owner.html", context)


@require_role("owner")
async def owner_done(request: Request) -> Response:
    form = await checked_form(request)
    removal = str(form.get("removal", ""))
    if removal:
        account = request.state.account
        await run_in_threadpool(
            removals.mark_done_by_hand,
            request.app.state.engine,
            removal,
            datetime.now(UTC),
            f"removed by hand, confirmed by {account.name}",
        )
    return RedirectResponse("/consent", status_code=303)
