"""The testimonial form a customer opens from the till's QR invitation.

A plain form (works without JavaScript, CSRF-checked) at ``/testimonial/<token>``: text, rating,
the name to show, up to four photos and consent with its scope and duration. The consent text
shown is versioned and kept with the answer. Nothing is published from here: answers wait for
``storyloop testimonials pull``, which puts them on a git branch for an editor.

Spam is kept out by the signed single-use link, a body size limit (413), field limits, and
failures counted per link and per address (:class:`publisher.shop.guard.Guard`).
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, date, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from publisher.customers import invites, photos, records
from publisher.customers.invites import Invitation
from publisher.shop.guard import Guard
from publisher.shop.stores import Store
from publisher.web import i18n, withdraw
from publisher.web.pages import language, render
from publisher.web.security import CSRF_FIELD

MAX_BODY = 4 * photos.MAX_BYTES + 64 * 1024
MAX_PHOTOS = 4
MAX_TEXT = 3000
MAX_NAME = 60
DURATIONS = ("withdrawn", "until")


def consent_sentences(gettext: Any, shop_name: str) -> dict[str, str]:
    """The consent text, as shown on the form, in the reader's language (version
    :data:`records.CONSENT_VERSION`; change the version whenever these words change)."""
    return {
        "intro": gettext(
            "I agree that %(shop)s may show what I wrote, the name I chose and my photos."
        )
        % {"shop": shop_name},
        "site": gettext("Where: on this business's website only."),
        "site, social, newsletter": gettext(
            "Where: on this business's website, its social media accounts and its newsletter."
        ),
        "withdrawn": gettext("For how long: until I withdraw my consent."),
        "until": gettext("For how long: until a date I choose:"),
        "until_date": gettext("For how long: until %(date)s."),
        "withdraw": gettext(
            "I can withdraw at any time by telling the shop; my words and photos are then removed."
        ),
    }


def _secret(request: Request) -> str:
    secret: str = request.app.state.invite_secret
    return secret


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.testimonial_guard
    return guard


def _invitation(request: Request) -> Invitation | None:
    return invites.read(_secret(request), request.path_params["token"])


def _store(request: Request, invitation: Invitation) -> Store | None:
    stores: dict[str, Store] = request.app.state.shop.stores
    return stores.get(invitation.store)


def _address(request: Request) -> str:
    return f"addr:{request.client.host if request.client else '-'}"


def _gone(request: Request, reason: str, status: int, lang: str | None = None) -> Response:
    return render(request, "testimonial_gone.html", {"reason": reason}, lang=lang, status=status)


def _is_used(request: Request, invitation: Invitation) -> bool:
    with request.app.state.engine.connect() as conn:
        return records.used(conn, invitation)


def _context(
    request: Request, invitation: Invitation, store: Store, lang: str, **more: Any
) -> dict[str, Any]:
    gettext = i18n.translations(lang).gettext
    return {
        "store": store,
        "visited": invitation.visited,
        "consent": consent_sentences(gettext, store.name),
        "consent_version": records.CONSENT_VERSION,
        "token": request.path_params["token"],
        "max_photos": MAX_PHOTOS,
        "max_text": MAX_TEXT,
        "max_name": MAX_NAME,
        "today": datetime.now(UTC).date().isoformat(),
        "form": {},
        "errors": {},
        **more,
    }


async def form_page(request: Request) -> Response:
    invitation = _invitation(request)
    if invitation is None:
        return _gone(request, "invalid", 404)
    store = _store(request, invitation)
    if store is None:
        return _gone(request, "invalid", 404)
    lang = language(request, store.locale)
    if await run_in_threadpool(_is_used, request, invitation):
        return _gone(request, "used", 410, lang)
    return render(
        request, "testimonial.html", _context(request, invitation, store, lang), lang=lang
    )


def _too_big(request: Request) -> bool:
    length = request.headers.get("content-length")
    return length is None or not length.isdigit() or int(length) > MAX_BODY


async def submit(request: Request) -> Response:
    if _too_big(request):
        return Response("Request body too large\n", status_code=413)
    invitation = _invitation(request)
    guard = _guard(request)
    keys = (_address(request), f"invite:{invitation.id}" if invitation else "invite:-")
    wait = guard.wait(*keys)
    if wait:
        return _gone(request, "wait", 429)
    if invitation is None or _store(request, invitation) is None:
        await asyncio.sleep(guard.fail(*keys))
        return _gone(request, "invalid", 404)
    store = _store(request, invitation)
    assert store is not None
    lang = language(request, store.locale)
    form = await request.form(max_files=MAX_PHOTOS, max_fields=20, max_part_size=MAX_TEXT * 4)
    given, expected = form.get(CSRF_FIELD), request.session.get(CSRF_FIELD)
    if not (
        isinstance(given, str)
        and isinstance(expected, str)
        and hmac.compare_digest(given.encode(), expected.encode())
    ):
        guard.fail(*keys)
        return _gone(request, "csrf", 403, lang)
    if await run_in_threadpool(_is_used, request, invitation):
        return _gone(request, "used", 410, lang)
    gettext = i18n.translations(lang).gettext
    errors: dict[str, str] = {}
    text = str(form.get("text", "")).strip()
    if not text:
        errors["text"] = gettext("Tell us in a few words how it went.")
    elif len(text) > MAX_TEXT:
        errors["text"] = gettext("Please keep it under %(n)s characters.") % {"n": MAX_TEXT}
    name = " ".join(str(form.get("name", "")).split())
    if not name or len(name) > MAX_NAME:
        errors["name"] = gettext(
            "Type the name to show, e.g. Anna K. (at most %(n)s characters)."
        ) % {"n": MAX_NAME}
    rating_text = str(form.get("rating", ""))
    rating = int(rating_text) if rating_text in {"1", "2", "3", "4", "5"} else 0
    if not rating:
        errors["rating"] = gettext("Choose from 1 to 5 stars.")
    scope = str(form.get("scope", ""))
    if scope not in records.SCOPES:
        errors["scope"] = gettext("Choose where your testimonial may be shown.")
    duration = str(form.get("duration", ""))
    until: date | None = None
    if duration == "until":
        try:
            until = date.fromisoformat(str(form.get("until", "")))
        except ValueError:
            errors["until"] = gettext("Choose the last day your testimonial may be shown.")
        else:
            if until <= datetime.now(UTC).date():
                errors["until"] = gettext("Choose a day after today.")
    elif duration != "withdrawn":
        errors["duration"] = gettext("Choose for how long your testimonial may be shown.")
    if form.get("agree") != "yes":
        errors["agree"] = gettext("Tick the box to give your consent, or close this page.")
    uploads = [f for f in form.getlist("photos") if isinstance(f, UploadFile) and f.filename]
    cleaned: list[bytes] = []
    if len(uploads) > MAX_PHOTOS:
        errors["photos"] = gettext("At most %(n)s photos.") % {"n": MAX_PHOTOS}
    else:
        for upload in uploads:
            data = await upload.read(photos.MAX_BYTES + 1)
            try:
                cleaned.append(await run_in_threadpool(photos.clean, data))
            except photos.PhotoError:
                errors["photos"] = gettext(
                    "%(file)s is not a photo we can read (JPEG, PNG or WebP up to 8 MB)."
                ) % {"file": upload.filename}
                break
    if errors:
        guard.fail(*keys)
        shown = {k: str(v) for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}
        context = _context(request, invitation, store, lang, form=shown, errors=errors)
        return render(request, "testimonial.html", context, lang=lang, status=422)
    consent = consent_sentences(gettext, store.name)
    shown_text = "\n".join(
        [
            consent["intro"],
            consent[scope],
            consent["withdrawn"] if until is None else consent["until_date"] % {"date": until},
            consent["withdraw"],
        ]
    )
    answer = records.Answer(lang, text, rating, name, scope, until, shown_text)
    settings = request.app.state.settings
    kept = await run_in_threadpool(
        records.save,
        request.app.state.engine,
        settings.var_dir,
        invitation,
        answer,
        cleaned,
        datetime.now(UTC),
    )
    if not kept:
        return _gone(request, "used", 410, lang)
    withdraw_url = await run_in_threadpool(withdraw.link_for, request, invitation.id)
    context = {"store": store, "name": name, "withdraw_url": withdraw_url}
    return render(request, "testimonial_done.html", context, lang=lang)
