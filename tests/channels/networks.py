"""Fake networks for the contract suite: success and failure answers shaped like the real APIs.

Each :class:`Network` knows one adapter's settings (with secrets), how to answer a successful
publish, and how to fail in each way the engine must tell apart. Email uses a real aiosmtpd
server on loopback instead of ``responses``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from channels.base import (
    AuthProblem,
    ChannelError,
    ContentRejected,
    OutcomeUnknown,
    RateLimited,
    RetryLater,
)
from publisher.settings import Secret

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
SECRETS = {
    "mastodon": "masto-SECRET-token-9f2c",
    "bluesky": "blue-SECRET-apppw-x7k1",
    "telegram": "123456:TELE-SECRET-botkey-AAE",
    "x": "x-SECRET-oauth2-token-55",
    "wechat": "wx-SECRET-appsecret-01",
    "weibo": "weibo-SECRET-token-2.00",
    "email": "smtp-SECRET-password-4",
    "webhook": "hook-SECRET-signing-88",
    "outbox": "outbox-SECRET-unused-0",
}
SECRET_FIELD = {
    "mastodon": "token",
    "bluesky": "app_password",
    "telegram": "bot_token",
    "x": "access_token",
    "wechat": "secret",
    "weibo": "access_token",
    "email": "password",
    "webhook": "signing_secret",
    "outbox": "token",
}
MASTODON = "https://mastodon.example"
BSKY = "https://bsky.social/xrpc"
TG = "https://api.telegram.org/bot" + SECRETS["telegram"]
XAPI = "https://api.x.com/2"
WX = "https://api.weixin.qq.com/cgi-bin"
WEIBO = "https://api.weibo.com/2/statuses/share.json"
HOOK = "https://shop.example/hooks/storyloop"

FAILURES = ("rate", "auth", "rejected", "server", "timeout", "connect")


@dataclass
class Network:
    name: str
    settings: dict[str, Any]
    succeed: Callable[[responses.RequestsMock], None]
    fail: Callable[[responses.RequestsMock, str], None]
    expected: dict[str, type[ChannelError]] = field(default_factory=dict)
    until: dict[str, datetime] = field(default_factory=dict)
    message: dict[str, str] = field(default_factory=dict)


def _transport(rsps: responses.RequestsMock, method: str, url: str, kind: str) -> bool:
    if kind == "timeout":
        rsps.add(method, url, body=requests.ReadTimeout("read timed out"))
    elif kind == "connect":
        rsps.add(method, url, body=requests.ConnectionError("Failed to establish a new connection"))
    else:
        return False
    return True


STANDARD = {
    "rate": RateLimited,
    "auth": AuthProblem,
    "rejected": ContentRejected,
    "server": RetryLater,
    "timeout": OutcomeUnknown,
    "connect": RetryLater,
}


# --------------------------------------------------------------------------- Mastodon


def _mastodon_base(rsps: responses.RequestsMock) -> None:
    instance = {
        "configuration": {"statuses": {"max_characters": 500, "characters_reserved_per_url": 23}}
    }
    rsps.get(f"{MASTODON}/api/v2/instance", json=instance)
    rsps.post(
        f"{MASTODON}/api/v2/media", json={"id": "110", "type": "image", "url": None}, status=202
    )
    rsps.get(f"{MASTODON}/api/v1/media/110", json={"id": "110", "type": "image"}, status=200)


def mastodon() -> Network:
    def succeed(rsps: responses.RequestsMock) -> None:
        _mastodon_base(rsps)
        status = {
            "id": "113",
            "url": "https://mastodon.example/@cc/113",
            "uri": "https://mastodon.example/users/cc/statuses/113",
        }
        rsps.post(f"{MASTODON}/api/v1/statuses", json=status)

    def fail(rsps: responses.RequestsMock, kind: str) -> None:
        _mastodon_base(rsps)
        url = f"{MASTODON}/api/v1/statuses"
        if _transport(rsps, "POST", url, kind):
            return
        answers = {
            "rate": (
                429,
                {"error": "Too many requests"},
                {"X-RateLimit-Reset": "2026-11-20T02:00:00.000Z"},
            ),
            "auth": (401, {"error": "The access token is invalid"}, {}),
            "rejected": (
                422,
                {"error": "Validation failed: Text character limit of 500 exceeded"},
                {},
            ),
            "server": (503, None, {}),
        }
        status, body, headers = answers[kind]
        if body is None:
            rsps.post(url, body="<html>503 Service Unavailable</html>", status=status)
        else:
            rsps.post(url, json=body, status=status, headers=headers)

    return Network(
        "mastodon",
        {"instance": MASTODON, "token": Secret(SECRETS["mastodon"]), "poll_interval": 0},
        succeed,
        fail,
        STANDARD,
        {"rate": datetime(2026, 11, 20, 2, 0, tzinfo=UTC)},
        {"rejected": "Text character limit of 500 exceeded"},
    )


# --------------------------------------------------------------------------- Bluesky

SESSION = {
    "accessJwt": "eyJ.access",
    "refreshJwt": "eyJ.refresh",
    "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
    "handle": "cedarandclay.bsky.social",
}
NOT_FOUND = {"error": "RecordNotFound", "message": "Could not locate record"}
BLOB = {
    "blob": {
        "$type": "blob",
        "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"},
        "mimeType": "image/jpeg",
        "size": 1234,
    }
}


def _bluesky_base(rsps: responses.RequestsMock, session: bool = True) -> None:
    if session:
        rsps.post(f"{BSKY}/com.atproto.server.createSession", json=SESSION)
    rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json=NOT_FOUND, status=400)
    rsps.post(f"{BSKY}/com.atproto.repo.uploadBlob", json=BLOB)


def bluesky() -> Network:
    def succeed(rsps: responses.RequestsMock) -> None:
        _bluesky_base(rsps)
        created = {
            "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/x",
            "cid": "bafyreic",
        }
        rsps.post(f"{BSKY}/com.atproto.repo.createRecord", json=created)

    def fail(rsps: responses.RequestsMock, kind: str) -> None:
        url = f"{BSKY}/com.atproto.repo.createRecord"
        if kind == "auth":
            bad = {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
            rsps.post(f"{BSKY}/com.atproto.server.createSession", json=bad, status=401)
            rsps.get(f"{BSKY}/com.atproto.repo.getRecord", json=NOT_FOUND, status=400)
            return
        _bluesky_base(rsps)
        if _transport(rsps, "POST", url, kind):
            return
        answers = {
            "rate": (
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                {"RateLimit-Reset": "1763605800"},
            ),
            "rejected": (
                400,
                {
                    "error": "InvalidRequest",
                    "message": "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes",  # noqa: E501
                },
                {},
            ),
            "server": (502, None, {}),
        }
        status, body, headers = answers[kind]
        if body is None:
            rsps.post(url, body="<html><body>502 Bad Gateway</body></html>", status=status)
        else:
            rsps.post(url, json=body, status=status, headers=headers)

    return Network(
        "bluesky",
        {"handle": "cedarandclay.bsky.social", "app_password": Secret(SECRETS["bluesky"])},
        succeed,
        fail,
        STANDARD,
        {"rate": datetime.fromtimestamp(1763605800, tz=UTC)},
        {"rejected": "must not be longer than 300 graphemes"},
    )


# --------------------------------------------------------------------------- Telegram


def telegram() -> Network:
    sent = {
        "ok": True,
        "result": {
            "message_id": 42,
            "date": 1763602200,
            "chat": {
                "id": -1001234567890,
                "title": "Cedar & Clay",
                "username": "cedarandclay",
                "type": "channel",
            },
        },
    }

    def succeed(rsps: responses.RequestsMock) -> None:
        rsps.post(f"{TG}/sendPhoto", json=sent)
        rsps.post(f"{TG}/sendMessage", json=sent)

    def fail(rsps: responses.RequestsMock, kind: str) -> None:
        for method in ("sendPhoto", "sendMessage"):
            url = f"{TG}/{method}"
            if _transport(rsps, "POST", url, kind):
                continue
            answers = {
                "rate": (
                    429,
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry after 35",
                        "parameters": {"retry_after": 35},
                    },
                ),
                "auth": (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
                "rejected": (
                    400,
                    {
                        "ok": False,
                        "error_code": 400,
                        "description": 'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 3',  # noqa: E501
                    },
                ),
                "server": (502, None),
            }
            status, body = answers[kind]
            if body is None:
                rsps.post(url, body="<html>502 Bad Gateway</html>", status=status)
            else:
                rsps.post(url, json=body, status=status)

    return Network(
        "telegram",
        {"chat_id": "@cedarandclay", "bot_token": Secret(SECRETS["telegram"])},
        succeed,
        fail,
        STANDARD,
        {"rate": NOW + timedelta(seconds=35)},
        {"rejected": "can't parse entities"},
    )


# --------------------------------------------------------------------------- X


def x() -> Network:
    def base(rsps: responses.RequestsMock) -> None:
        media = {
            "data": {
                "id": "1880028106020515840",
                "media_key": "3_1880028106020515840",
                "size": 1234,
                "expires_after_secs": 86400,
            }
        }
        rsps.post(f"{XAPI}/media/upload", json=media)

    def succeed(rsps: responses.RequestsMock) -> None:
        base(rsps)
        rsps.post(
            f"{XAPI}/tweets",
            json={"data": {"id": "1445880548472328192", "text": "..."}},
            status=201,
        )

    def fail(rsps: responses.RequestsMock, kind: str) -> None:
        base(rsps)
        url = f"{XAPI}/tweets"
        if _transport(rsps, "POST", url, kind):
            return
        problem = {"type": "about:blank"}
        answers = {
            "rate": (
                429,
                {
                    **problem,
                    "title": "Too Many Requests",
                    "detail": "Too Many Requests",
                    "status": 429,
                },
                {"x-rate-limit-reset": "1763605800", "x-rate-limit-remaining": "0"},
            ),
            "auth": (
                401,
                {**problem, "title": "Unauthorized", "detail": "Unauthorized", "status": 401},
                {},
            ),
            "rejected": (
                403,
                {
                    **problem,
                    "title": "Forbidden",
                    "detail": "You are not allowed to create a Tweet with duplicate content.",
                    "status": 403,
                },
                {},
            ),
            "server": (
                503,
                {
                    **problem,
                    "title": "Service Unavailable",
                    "detail": "Service Unavailable",
                    "status": 503,
                },
                {},
            ),
        }
        status, body, headers = answers[kind]
        rsps.post(
            url, json=body, status=status, headers=headers, content_type="application/problem+json"
        )

    return Network(
        "x",
        {"access_token": Secret(SECRETS["x"]), "username": "cedarandclay"},
        succeed,
        fail,
        STANDARD,
        {"rate": datetime.fromtimestamp(1763605800, tz=UTC)},
        {"rejected": "duplicate content"},
    )


# --------------------------------------------------------------------------- WeChat

PUBLISHED: dict[str, Any] = {
    "publish_id": "100000001",
    "publish_status": 0,
    "article_id": "b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy",
    "article_detail": {
        "count": 1,
        "item": [{"idx": 1, "article_url": "https://mp.weixin.qq.com/s/b5O2OUs25HBxRceL7hfReg"}],
    },
    "fail_idx": [],
}


def _wechat_base(rsps: responses.RequestsMock) -> None:
    rsps.post(
        f"{WX}/stable_token", json={"access_token": "79_ACCESS_TOKEN_xyz", "expires_in": 7200}
    )
    rsps.post(
        f"{WX}/material/add_material",
        json={"media_id": "THUMB_MEDIA_ID", "url": "http://mmbiz.qpic.cn/thumb/0"},
    )
    rsps.post(f"{WX}/media/uploadimg", json={"url": "http://mmbiz.qpic.cn/mmbiz_jpg/kitchen/0"})


def wechat() -> Network:
    def succeed(rsps: responses.RequestsMock) -> None:
        _wechat_base(rsps)
        rsps.post(f"{WX}/draft/add", json={"media_id": "DRAFT_MEDIA_ID", "item": []})
        rsps.post(
            f"{WX}/freepublish/submit",
            json={
                "errcode": 0,
                "errmsg": "ok",
                "publish_id": "100000001",
                "msg_data_id": 2247483650,
            },
        )
        rsps.post(f"{WX}/freepublish/get", json=PUBLISHED)

    def fail(rsps: responses.RequestsMock, kind: str) -> None:
        _wechat_base(rsps)
        url = f"{WX}/draft/add"
        if _transport(rsps, "POST", url, kind):
            return
        answers = {
            "rate": {"errcode": 45009, "errmsg": "reach max api daily quota limit rid: 6737"},
            "auth": {
                "errcode": 40164,
                "errmsg": "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 67",  # noqa: E501
            },
            "rejected": {"errcode": 45003, "errmsg": "title size out of limit rid: 6738"},
            "server": {"errcode": -1, "errmsg": "system error rid: 6739"},
        }
        rsps.post(url, json=answers[kind])

    return Network(
        "wechat",
        {
            "appid": "wx0000000000000000",
            "secret": Secret(SECRETS["wechat"]),
            "author": "松陶家居",
            "poll_interval": 0,
        },
        succeed,
        fail,
        {**STANDARD, "rate": RetryLater},
        {"rate": datetime(2026, 11, 20, 16, 5, tzinfo=UTC)},
        {"rejected": "title size out of limit"},
    )


# --------------------------------------------------------------------------- Weibo


def weibo() -> Network:
    def succeed(rsps: responses.RequestsMock) -> None:
        status = {
            "created_at": "Fri Nov 20 09:30:00 +0800 2026",
            "id": 5100000000000001,
            "idstr": "5100000000000001",
            "text": "...",
            "user": {"id": 7000000001},
        }
        rsps.post(WEIBO, json=status)

    def fail(rsps: responses.RequestsMock, kind: str) -> None:
        if _transport(rsps, "POST", WEIBO, kind):
            return
        req = "/2/statuses/share.json"
        answers = {
            "rate": (
                403,
                {
                    "request": req,
                    "error_code": "10023",
                    "error": "User requests out of rate limit!",
                },
            ),
            "auth": (401, {"request": req, "error_code": "21327", "error": "expired_token"}),
            "rejected": (
                400,
                {"request": req, "error_code": "20019", "error": "Repeated weibo text!"},
            ),
            "server": (500, {"request": req, "error_code": "10001", "error": "System error"}),
        }
        status, body = answers[kind]
        rsps.post(WEIBO, json=body, status=status)

    return Network(
        "weibo",
        {"access_token": Secret(SECRETS["weibo"]), "safe_domain": "cedarandclay.example"},
        succeed,
        fail,
        STANDARD,
        {"rate": datetime(2026, 11, 20, 2, 0, tzinfo=UTC)},
        {"rejected": "Repeated weibo text"},
    )


# --------------------------------------------------------------------------- webhook


def webhook() -> Network:
    def succeed(rsps: responses.RequestsMock) -> None:
        rsps.post(HOOK, json={"id": "evt_01J9Z"}, status=202)

    def fail(rsps: responses.RequestsMock, kind: str) -> None:
        if _transport(rsps, "POST", HOOK, kind):
            return
        answers = {
            "rate": (429, {"error": "slow down"}, {"Retry-After": "120"}),
            "auth": (401, {"error": "bad signature"}, {}),
            "rejected": (422, {"error": "unknown store xiamen-9"}, {}),
            "server": (503, {"error": "maintenance"}, {}),
        }
        status, body, headers = answers[kind]
        rsps.post(HOOK, json=body, status=status, headers=headers)

    return Network(
        "webhook",
        {"url": HOOK, "signing_secret": Secret(SECRETS["webhook"])},
        succeed,
        fail,
        STANDARD,
        {"rate": NOW + timedelta(seconds=120)},
        {"rejected": "unknown store xiamen-9"},
    )


# --------------------------------------------------------------------------- email


class Mailbox:
    """An aiosmtpd handler that accepts, defers or refuses, as the test wants."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.data_reply: str | None = None
        self.mail_reply: str | None = None
        self.rcpt_replies: dict[str, str] = {}

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real aiosmtpd server on loopback; it can refuse logins or go away on request."""

    def __init__(self, port: int) -> None:
        self.mailbox = Mailbox()
        self.port = port
        self.reject_login = False
        self.running = False
        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=self._check_login,
            auth_require_tls=False,
        )

    def _check_login(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = getattr(auth_data, "password", b"") == SECRETS["email"].encode()
        return AuthResult(success=ok and not self.reject_login, handled=False)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False

    def __exit__(self, *exc: object) -> None:
        self.stop()


SIGNING = Secret("contract-suite-signing-key", "STORYLOOP_SIGNING_KEY")  # unsubscribe links

SUBSCRIBERS = """email,name,consent
lin@example.com,Lin Mei,yes
anna@example.de,Anna,YES
no-consent@example.com,Someone,no
not-an-address,Broken,yes
optout@example.com,Gone,yes
LIN@example.com,Lin again,yes
"""


def email(server: SmtpServer, subscribers: Path) -> Network:
    def succeed(rsps: responses.RequestsMock) -> None:
        return None

    def fail(rsps: responses.RequestsMock, kind: str) -> None:
        box = server.mailbox
        if kind == "rate":
            box.mail_reply = "421 4.7.0 Too many messages, try again later"
        elif kind == "auth":
            server.reject_login = True
        elif kind == "rejected":
            box.data_reply = "554 5.7.1 Message rejected: looks like spam"
        elif kind == "server":
            box.data_reply = "451 4.3.0 Mail server temporarily unavailable"
        elif kind == "connect":
            server.stop()

    settings = {
        "host": "127.0.0.1",
        "port": server.port,
        "starttls": False,
        "sender": "Cedar & Clay <stories@cedarandclay.example>",
        "subscribers": str(subscribers),
        "username": "news",
        "password": Secret(SECRETS["email"]),
        "tracking_base_url": "https://t.cedarandclay.example",
        "timeout": 5,
    }
    expected: dict[str, type[ChannelError]] = {
        "rate": RetryLater,
        "auth": AuthProblem,
        "rejected": ContentRejected,
        "server": RetryLater,
        "connect": RetryLater,
    }
    return Network("email", settings, succeed, fail, expected, {}, {"rejected": "looks like spam"})


HTTP_NETWORKS: dict[str, Callable[[], Network]] = {
    "mastodon": mastodon,
    "bluesky": bluesky,
    "telegram": telegram,
    "x": x,
    "wechat": wechat,
    "weibo": weibo,
    "webhook": webhook,
}
