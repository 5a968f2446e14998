"""What a shop's website talks to: ``storyloop.js`` and the order webhook."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from publisher.shop import shopify
from publisher.tracking.conversions import InvalidConversion, default_currency

SCRIPT = Path(__file__).with_name("static") / "storyloop.js"
MAX_ORDER = 1024 * 1024


async def script(request: Request) -> Response:
    body = SCRIPT.read_bytes()
    headers = {"cache-control": "public, max-age=3600", "access-control-allow-origin": "*"}
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


async def shopify_webhook(request: Request) -> Response:
    settings = request.app.state.settings
    secret = settings.engine.tracking.shopify_secret
    if not secret:
        return JSONResponse({"error": "no shopify_secret configured"}, status_code=401)
    size = request.headers.get("content-length", "")
    if size.isdigit() and int(size) > MAX_ORDER:
        return JSONResponse({"error": "body too large"}, status_code=413)
    body = await request.body()
    given = request.headers.get("x-shopify-hmac-sha256", "")
    if len(body) > MAX_ORDER or not shopify.signed(body, given, secret.reveal()):
        return JSONResponse({"error": "signature does not match"}, status_code=401)
    try:
        order = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"errors": {"body": "not JSON"}}, status_code=400)
    topic = request.headers.get("x-shopify-topic", "")
    engine = request.app.state.engine

    def run() -> shopify.Received:
        with engine.begin() as conn:
            return shopify.receive(conn, topic, order, default_currency(settings))

    try:
        received = await run_in_threadpool(run)
    except InvalidConversion as exc:
        return JSONResponse({"errors": exc.errors}, status_code=422)
    return JSONResponse({"status": received.value})
