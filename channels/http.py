"""The thin HTTP layer every adapter shares: one request, every failure mapped once.

Transport failures: a connection that never opened is safe to retry (:class:`RetryLater`); a
timeout or a broken connection after the request went out may have posted (:class:`OutcomeUnknown`).
HTTP answers: 429 is :class:`RateLimited` until the time the network's own headers or body give;
401/403 are :class:`AuthProblem`; other 4xx are :class:`ContentRejected` with the network's
message; 408 and 5xx are :class:`RetryLater`. Transport exceptions are never chained: their text
holds the request URL, which for some networks (Telegram) holds the token.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import urllib3

from channels.base import (
    DEFAULT_TIMEOUT,
    AuthProblem,
    Channel,
    ContentRejected,
    OutcomeUnknown,
    RateLimited,
    RetryLater,
)

SERVER_ERROR_DELAY = timedelta(minutes=5)
CONNECT_ERROR_DELAY = timedelta(minutes=2)
RATE_LIMIT_DELAY = timedelta(minutes=15)
RESET_HEADERS = ("retry-after", "x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset")
_MESSAGE_KEYS = ("error_description", "detail", "message", "description", "errmsg", "error")


# Transport failures by class, never by their text: the first row whose class is the error or
# one it wraps (``args``, urllib3's ``reason``, ``__cause__``/``__context__``) decides whether the
# request may have reached the network. Order matters: a connection that never opened is named
# before the resets a refused connection can also carry.
TRANSPORT: tuple[tuple[type[BaseException], type[RetryLater] | type[OutcomeUnknown], str], ...] = (
    (requests.ConnectTimeout, RetryLater, "cannot connect"),
    (requests.Timeout, OutcomeUnknown, "no answer in time; the post may exist"),
    (urllib3.exceptions.NewConnectionError, RetryLater, "cannot connect"),
    (urllib3.exceptions.ProtocolError, OutcomeUnknown, "connection lost before the answer"),
    (ConnectionResetError, OutcomeUnknown, "connection lost before the answer"),
    (ConnectionAbortedError, OutcomeUnknown, "connection lost before the answer"),
    (BrokenPipeError, OutcomeUnknown, "connection lost before the answer"),
    (requests.ConnectionError, RetryLater, "cannot connect"),
    (requests.RequestException, OutcomeUnknown, ""),  # said by its class name
)


def transport_failure(
    exc: requests.RequestException,
) -> tuple[type[RetryLater] | type[OutcomeUnknown], str]:
    """The ChannelError class for a transport failure, and what to say about it."""
    wrapped = list(_wrapped(exc))
    for cls, error, says in TRANSPORT:
        if any(isinstance(e, cls) for e in wrapped):
            return error, says or type(exc).__name__
    return OutcomeUnknown, type(exc).__name__


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it carries, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner: list[object] = [*e.args, getattr(e, "reason", None), e.__cause__, e.__context__]
        todo += [i for i in inner if isinstance(i, BaseException)]


def request(channel: Channel, method: str, url: str, **kw: Any) -> requests.Response:
    """One HTTP request through the channel's session, transport failures mapped."""
    kw.setdefault("timeout", channel.settings.get("timeout") or DEFAULT_TIMEOUT)
    now = channel.context.now()
    try:
        return channel.context.session.request(method, url, **kw)
    except requests.RequestException as exc:
        error, says = transport_failure(exc)
    if error is RetryLater:
        raise channel.error(
            RetryLater, f"{method} {_host(url)}: {says}", retry_at=now + CONNECT_ERROR_DELAY
        ) from None
    raise channel.error(error, f"{method} {_host(url)}: {says}") from None


def _host(url: str) -> str:
    match = re.match(r"https?://([^/]+)", url)
    return match.group(1) if match else "the server"


def body_json(resp: requests.Response) -> Any:
    """The answer as JSON, or None for a proxy's HTML page or an empty body."""
    try:
        return resp.json()
    except (ValueError, json.JSONDecodeError):
        return None


def api_message(resp: requests.Response) -> str:
    """The network's own words about a failure, whatever shape its error body has."""
    data = body_json(resp)
    if isinstance(data, dict):
        for key in _MESSAGE_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value:
                name = data.get("error") if key != "error" else None
                return f"{name}: {value}" if isinstance(name, str) and name != value else value
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0].get("detail") or errors[0])
    text = " ".join(resp.text.split())[:200]
    return text or resp.reason or f"HTTP {resp.status_code}"


def reset_time(headers: Any, now: datetime, extra: float | str | None = None) -> datetime | None:
    """When a rate limit ends, from Retry-After / *RateLimit-Reset headers or a body value."""
    values = [headers.get(h) for h in RESET_HEADERS] if headers is not None else []
    for value in [extra, *values]:
        when = parse_reset(value, now)
        if when is not None:
            return when
    return None


def parse_reset(value: float | str | None, now: datetime) -> datetime | None:
    """Seconds from now, epoch seconds, ISO 8601 (Mastodon) or an HTTP date (Retry-After)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return _parse_date(str(value))
    if number > 1_000_000_000:
        return datetime.fromtimestamp(number, tz=now.tzinfo)
    return now + timedelta(seconds=number)


def _parse_date(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


def check(channel: Channel, resp: requests.Response, what: str) -> requests.Response:
    """Raise the mapped ChannelError unless the answer is a success (2xx)."""
    if 200 <= resp.status_code < 300:
        return resp
    raise failure(channel, resp, what)


def failure(channel: Channel, resp: requests.Response, what: str) -> Exception:
    status, now = resp.status_code, channel.context.now()
    message = f"{what}: HTTP {status}: {api_message(resp)}"
    if status == 429:
        until = reset_time(resp.headers, now) or now + RATE_LIMIT_DELAY
        return channel.error(RateLimited, message, until=until)
    if status in (401, 403):
        return channel.error(
            AuthProblem, message, hint=f"check the credentials: {channel.setup_url}"
        )
    if status == 408 or status >= 500:
        retry_at = reset_time(resp.headers, now) or now + SERVER_ERROR_DELAY
        return channel.error(RetryLater, message, retry_at=retry_at)
    return channel.error(ContentRejected, message)


class RedactTokens(logging.Filter):
    """Masks secrets that sit in request URLs (Telegram's /bot<token>/) in library log lines."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.pattern.sub("***", a) if isinstance(a, str) else a for a in record.args
            )
        record.msg = self.pattern.sub("***", str(record.msg))
        return True
