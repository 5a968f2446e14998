"""The till: staff type or scan a code, see whether it is valid here and now, enter the amount
and the receipt number, confirm, and may undo for a few minutes.

Every step is a plain form (CSRF-checked), so the till works without JavaScript; the camera
scan (the browser's BarcodeDetector) only fills in the code field. The confirm form carries an
id made when it was shown: sending it twice (a flaky connection, a double tap) records once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import segno
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.customers import invite_mail, invites
from publisher.shop import redeem as redeem_mod
from publisher.shop.context import Shop
from publisher.shop.redeem import Outcome, Problem, Reason, Sale, Status, Undo
from publisher.shop.stores import Store, parse_amount
from publisher.tracking import referrals
from publisher.tracking.conversions import default_currency
from publisher.web import i18n
from publisher.web.accounts import Account
from publisher.web.pages import language, render
from publisher.web.reasons import sentence
from publisher.web.security import Forbidden, checked_form, require_role

log = logging.getLogger(__name__)
REQUEST_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _shop(request: Request) -> Shop:
    shop: Shop = request.app.state.shop
    return shop


def _account(request: Request) -> Account:
    account: Account = request.state.account
    return account


def _store(request: Request, form: FormData | None = None) -> Store | None:
    """The store this till acts for: a staff member's own; for the owner, the one chosen."""
    shop, account = _shop(request), _account(request)
    asked = (form.get("store") if form else None) or request.query_params.get("store")
    if account.store:
        if asked and asked != account.store:
            raise Forbidden("store")
        return shop.stores.get(account.store)
    if isinstance(asked, str) and asked in shop.stores:
        request.session["till_store"] = asked
        return shop.stores[asked]
    if asked == "":  # "change store": ask again
        request.session.pop("till_store", None)
        return None
    chosen = request.session.get("till_store")
    return shop.stores.get(chosen) if isinstance(chosen, str) else None


def _lang(request: Request, store: Store | None) -> str:
    return language(request, store.locale if store else None)


def _currency(request: Request, store: Store) -> str | None:
    return store.currency or default_currency(request.app.state.settings)


def _context(request: Request, store: Store | None, **more: Any) -> dict[str, Any]:
    return {"store": store, "stores": _shop(request).stores, **more}


@require_role("owner", "staff")
async def till_page(request: Request) -> Response:
    store = _store(request)
    return render(request, "till.html", _context(request, store), lang=_lang(request, store))


def _keys(request: Request, code: str | None) -> tuple[str, ...]:
    keys = (f"account:{_account(request).name}",)
    return (*keys, f"code:{code}") if code else keys


async def _too_many(request: Request, store: Store | None, wait: int) -> Response:
    context = _context(request, store, wait_minutes=max(1, (wait + 59) // 60))
    return render(request, "till.html", context, lang=_lang(request, store), status=429)


def _sentences(problems: tuple[Problem, ...] | list[Problem], lang: str) -> list[str]:
    gettext = i18n.translations(lang).gettext
    return [sentence(p, gettext) for p in problems]


@require_role("owner", "staff")
async def check(request: Request) -> Response:
    form = await checked_form(request)
    store = _store(request, form)
    if store is None:
        return RedirectResponse("/till", status_code=303)
    shop = _shop(request)
    typed = str(form.get("code", ""))
    code, problem = redeem_mod.read_code(typed, shop.prefix)
    wait = shop.guard.wait(*_keys(request, code))
    if wait:
        return await _too_many(request, store, wait)
    lang = _lang(request, store)
    if code is None or problem is not None:
        await asyncio.sleep(shop.guard.fail(*_keys(request, None)))
        return _refused_code(request, store, typed, Problem(Reason.MISTYPED), lang)
    engine = request.app.state.engine

    def look() -> tuple[redeem_mod.CodeInfo | None, list[Problem]]:
        with engine.connect() as conn:
            info = redeem_mod.lookup(conn, code, shop.book, shop.stores)
            if info is None:
                return None, []
            now = datetime.now(UTC)
            return info, redeem_mod.check(conn, info, store, now, shop.stores, shop.referral_rules)

    info, problems = await run_in_threadpool(look)
    if info is None:
        await asyncio.sleep(shop.guard.fail(*_keys(request, code)))
        return _refused_code(request, store, typed, Problem(Reason.UNKNOWN), lang)
    refused = [p for p in problems if p.reason not in shop.allowed]
    if refused:
        shop.guard.fail(f"code:{code}")
    warnings = [p for p in problems if p.reason in shop.allowed]
    referral = await run_in_threadpool(_referral_of, request, info)
    return _check_page(request, store, info, refused, warnings, lang, referral=referral)


def _referral_of(request: Request, info: redeem_mod.CodeInfo) -> referrals.Referral | None:
    """The referral behind a referral code, for the rewards its customer has earned."""
    if info.kind != "referral":
        return None
    with request.app.state.engine.connect() as conn:
        return referrals.find(conn, info.code)


def _refused_code(
    request: Request, store: Store, typed: str, problem: Problem, lang: str
) -> Response:
    context = _context(request, store, typed=typed, refused=_sentences([problem], lang))
    return render(request, "till.html", context, lang=lang, status=422)


def _check_page(
    request: Request,
    store: Store,
    info: redeem_mod.CodeInfo,
    refused: list[Problem],
    warnings: list[Problem],
    lang: str,
    *,
    amount: str = "",
    receipt: str = "",
    request_id: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    referral: referrals.Referral | None = None,
    friend_code: str = "",
    rewarded: bool = False,
) -> Response:
    shop = _shop(request)
    rules = shop.referral_rules
    story = shop.book.story(info.offer.story)
    currency = _currency(request, store)
    context = _context(
        request,
        store,
        info=info,
        story=story,
        refused=_sentences(refused, lang),
        warnings=_sentences(warnings, lang),
        currency=currency,
        example=store.money(4550, currency) if currency else "",
        amount=amount,
        receipt=receipt,
        request_id=request_id or secrets.token_urlsafe(16),
        errors=errors or {},
        rules=rules,
        referral=referral,
        due=referral.due(rules) if referral and rules else 0,
        friend_code=friend_code,
        rewarded=rewarded,
        last_store=shop.stores[info.last_use[1]].name
        if info.last_use and info.last_use[1] in shop.stores
        else (info.last_use[1] if info.last_use else None),
    )
    return render(request, "till_check.html", context, lang=lang, status=status)


def _request_id(form: FormData) -> str | None:
    value = str(form.get("request_id", ""))
    ok = 8 <= len(value) <= 64 and set(value) <= REQUEST_ID_CHARS
    return value if ok else None


@require_role("owner", "staff")
async def confirm(request: Request) -> Response:
    form = await checked_form(request)
    store = _store(request, form)
    if store is None:
        return RedirectResponse("/till", status_code=303)
    shop = _shop(request)
    lang = _lang(request, store)
    code, _ = redeem_mod.read_code(str(form.get("code", "")), shop.prefix)
    wait = shop.guard.wait(*_keys(request, code))
    if wait:
        return await _too_many(request, store, wait)
    request_id = _request_id(form)
    if code is None or request_id is None:
        return RedirectResponse("/till", status_code=303)
    amount_text = str(form.get("amount", "")).strip()
    receipt = " ".join(str(form.get("receipt", "")).split())[:100]
    currency = _currency(request, store)
    errors: dict[str, str] = {}
    gettext = i18n.translations(lang).gettext
    value = 0
    try:
        value = parse_amount(amount_text, store.locale)
    except ValueError:
        example = store.money(4550, currency) if currency else "45.50"
        errors["amount"] = gettext("Type the amount paid, e.g. %(example)s.") % {"example": example}
    if not receipt:
        errors["receipt"] = gettext("Type the receipt number from the till slip.")
    if currency is None:
        errors["amount"] = gettext("This store has no currency in the settings yet.")
    friend_text = str(form.get("referral", "")).strip()
    friend_code = None
    if friend_text and shop.referral_rules is not None:
        friend_code, _ = redeem_mod.read_code(friend_text, shop.prefix)
        if friend_code is None:
            errors["referral"] = gettext(
                "This is not a complete referral code: please type it again from the "
                "customer's screen, or leave the field empty."
            )
    engine = request.app.state.engine
    account = _account(request)
    sale = Sale(
        code=code,
        store=store,
        value_minor=value,
        currency=currency or "",
        receipt=receipt,
        source="till",
        account=account.name,
        at=datetime.now(UTC),
        request_id=request_id,
        referral=friend_code,
    )
    rules = shop.referral_rules

    def run() -> tuple[Outcome, redeem_mod.CodeInfo | None, list[Problem], str | None]:
        with engine.begin() as conn:
            if errors:
                info = redeem_mod.lookup(conn, code, shop.book, shop.stores)
                found = (
                    redeem_mod.check(conn, info, store, sale.at, shop.stores, rules) if info else []
                )
                return Outcome(Status.REFUSED), info, found, None
            outcome = redeem_mod.redeem(conn, sale, shop.book, shop.stores, shop.allowed, rules)
            return outcome, None, [], _hand_out(conn, shop, outcome, sale)

    outcome, info, found, referral_code = await run_in_threadpool(run)
    if errors and info is not None:
        refused = [p for p in found if p.reason not in shop.allowed]
        warnings = [p for p in found if p.reason in shop.allowed]
        return _check_page(
            request,
            store,
            info,
            refused,
            warnings,
            lang,
            amount=amount_text,
            receipt=receipt,
            request_id=request_id,
            errors=errors,
            status=422,
            friend_code=friend_text,
        )
    return _done_page(request, store, outcome, sale, lang, referral_code)


def _hand_out(conn: Any, shop: Shop, outcome: Outcome, sale: Sale) -> str | None:
    """The customer's referral code ("give this to a friend"), for a sale recorded now or
    before; None when the owner has no referral rule."""
    if shop.referral_rules is None or outcome.key is None:
        return None
    if outcome.status not in (Status.RECORDED, Status.DUPLICATE):
        return None
    info = outcome.info
    if info is None:  # a resent form: the code handed out the first time
        return referrals.code_for_sale(conn, outcome.key)
    visit = referrals.Visit(
        outcome.key, info.code, info.reader, info.offer.story, sale.store.id, info.attribution
    )
    return referrals.hand_out(conn, visit, shop.prefix, sale.at)


def _done_page(
    request: Request,
    store: Store,
    outcome: Outcome,
    sale: Sale,
    lang: str,
    referral_code: str | None = None,
) -> Response:
    shop = _shop(request)
    if outcome.status is Status.UNKNOWN_CODE or (
        outcome.status is Status.REFUSED and outcome.info is None
    ):
        problem = Problem(Reason.UNKNOWN)
        return _refused_code(request, store, sale.code, problem, lang)
    if outcome.status is Status.REFUSED and outcome.info is not None:
        shop.guard.fail(f"code:{sale.code}")
        refused = [p for p in outcome.problems]
        return _check_page(
            request, store, outcome.info, refused, list(outcome.warnings), lang, status=409
        )
    context = _context(
        request,
        store,
        outcome=outcome.status.value,
        info=outcome.info,
        offer_text=outcome.info.offer.text if outcome.info else None,
        money=store.money(sale.value_minor, sale.currency),
        receipt=sale.receipt,
        request_id=sale.request_id,
        warnings=_sentences(outcome.warnings, lang),
        undo_minutes=int(shop.undo_window.total_seconds() // 60),
        invite_qr=_invitation_qr(request, store, sale),
        can_mail=invite_mail.mail_settings(request.app.state.settings) is not None,
        referral_code=referral_code,
        referral_url=referral_url(request, referral_code) if referral_code else None,
        referral_qr=_qr(referral_url(request, referral_code)) if referral_code else None,
        rules=shop.referral_rules,
    )
    return render(request, "till_done.html", context, lang=lang)


def referral_url(request: Request, code: str) -> str:
    """The customer's own page of their referral code (to keep, show or print)."""
    base = request.app.state.settings.tracking_base_url.rstrip("/")
    return f"{base}/referral/{code}"


def _qr(text: str) -> str:
    return str(segno.make(text, error="m").svg_data_uri(scale=4, border=4))


def invitation_url(request: Request, store: Store, sale: Sale) -> str:
    """The customer's signed, single-use link to the testimonial form for this sale."""
    visited = sale.at.astimezone(ZoneInfo(store.timezone or "UTC")).date()
    secret: str = request.app.state.invite_secret
    token = invites.make(secret, store.id, redeem_mod.sale_key(sale), visited)
    base = request.app.state.settings.tracking_base_url.rstrip("/")
    return f"{base}{invites.PATH}{token}"


def _invitation_qr(request: Request, store: Store, sale: Sale) -> str:
    """The invitation as a QR code (an SVG data URI: the page's CSP allows data: images)."""
    qr = segno.make(invitation_url(request, store, sale), error="m")
    return str(qr.svg_data_uri(scale=4, border=4))


@require_role("owner", "staff")
async def invite_by_mail(request: Request) -> Response:
    """Send this sale's invitation to the address the customer gives, if they agree; the
    address is used for the one message and kept nowhere."""
    form = await checked_form(request)
    store = _store(request, form)
    request_id = _request_id(form)
    mail = invite_mail.mail_settings(request.app.state.settings)
    if store is None or request_id is None or mail is None:
        return RedirectResponse("/till", status_code=303)
    lang = _lang(request, store)
    gettext = i18n.translations(lang).gettext
    to = invite_mail.address(str(form.get("email", "")))
    errors: dict[str, str] = {}
    if to is None:
        errors["email"] = gettext("Type the customer's email address, e.g. name@example.com.")
    if form.get("agree") != "yes":
        errors["agree"] = gettext("Ask the customer first: tick the box when they agree.")
    sale = await run_in_threadpool(_till_sale, request, request_id)
    if sale is None:
        return RedirectResponse("/till", status_code=303)
    if errors:
        context = _context(request, store, request_id=request_id, errors=errors)
        return render(request, "till_mail.html", context, lang=lang, status=422)
    assert to is not None
    key, at = sale
    visited = at.astimezone(ZoneInfo(store.timezone or "UTC")).date()
    token = invites.make(request.app.state.invite_secret, store.id, key, visited)
    base = request.app.state.settings.tracking_base_url.rstrip("/")
    url = f"{base}{invites.PATH}{token}"
    letter = invite_mail.message(to, mail.sender, store.name, url, gettext)
    try:
        await run_in_threadpool(invite_mail.send, letter, mail.smtp)
    except invite_mail.MailFailed as exc:
        log.warning("%s", exc)  # the server and the kind of failure; never the address
        context = _context(request, store, request_id=request_id, errors={}, failed=True)
        return render(request, "till_mail.html", context, lang=lang, status=502)
    return render(request, "till.html", _context(request, store, mailed=True), lang=lang)


def _till_sale(request: Request, request_id: str) -> tuple[str, datetime] | None:
    """(sale key, when) of a till redemption this account may act for, not undone."""
    from sqlalchemy import select

    from publisher.shop.schema import redemption_requests as table

    with request.app.state.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.request_id == request_id)).first()
    if row is None or row.undone_at is not None or not _account(request).may_use(row.store):
        return None
    at: datetime = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return str(row.dedupe_key), at


@require_role("owner", "staff")
async def reward(request: Request) -> Response:
    """The referrer is back: hand over one reward they earned (once per reward, even with two
    tills at once)."""
    form = await checked_form(request)
    store = _store(request, form)
    shop = _shop(request)
    rules = shop.referral_rules
    code, _ = redeem_mod.read_code(str(form.get("code", "")), shop.prefix)
    if store is None or code is None or rules is None:
        return RedirectResponse("/till", status_code=303)
    engine = request.app.state.engine

    def run() -> tuple[bool, redeem_mod.CodeInfo | None, list[Problem]]:
        with engine.begin() as conn:
            given = referrals.give_reward(conn, code, rules)
            info = redeem_mod.lookup(conn, code, shop.book, shop.stores)
            now = datetime.now(UTC)
            found = redeem_mod.check(conn, info, store, now, shop.stores, rules) if info else []
            return given, info, found

    given, info, found = await run_in_threadpool(run)
    lang = _lang(request, store)
    if info is None or info.kind != "referral":
        return _refused_code(request, store, code, Problem(Reason.UNKNOWN), lang)
    refused = [p for p in found if p.reason not in shop.allowed]
    warnings = [p for p in found if p.reason in shop.allowed]
    referral = await run_in_threadpool(_referral_of, request, info)
    return _check_page(
        request,
        store,
        info,
        refused,
        warnings,
        lang,
        referral=referral,
        rewarded=given,
        status=200 if given else 409,
    )


@require_role("owner", "staff")
async def undo(request: Request) -> Response:
    form = await checked_form(request)
    store = _store(request, form)
    request_id = _request_id(form)
    if request_id is None:
        return RedirectResponse("/till", status_code=303)
    shop = _shop(request)
    account = _account(request)
    engine = request.app.state.engine

    def run() -> Undo:
        with engine.begin() as conn:
            return redeem_mod.undo(
                conn, request_id, account.may_use, datetime.now(UTC), shop.undo_window
            )

    result = await run_in_threadpool(run)
    status = 200 if result in (Undo.DONE, Undo.ALREADY) else 409
    if result is Undo.NOT_YOURS:
        status = 403
    context = _context(request, store, undone=result.value)
    return render(request, "till.html", context, lang=_lang(request, store), status=status)
