"""Weibo: statuses/share.json, 140 汉字 (two ASCII characters count as one), and the text must
carry a URL on the app's registered safe domain. A tracked-link domain that differs is a settings
error reported by ``storyloop check``, not a post that fails every day.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests

from channels import http, images
from channels.base import (
    AuthProblem,
    Channel,
    ContentRejected,
    DeliveryKey,
    Idempotency,
    LengthRule,
    Links,
    MediaLimits,
    Metrics,
    Post,
    RateLimited,
    Receipt,
    RetryLater,
    SettingSpec,
)
from publisher.model import Story

DEFAULT_API = "https://api.weibo.com"
AUTH_CODES = frozenset({21301, 21314, 21315, 21316, 21317, 21319, 21325, 21327, 21332})
RATE_CODES = frozenset({10022, 10023, 10024})
RETRY_CODES = frozenset({10001, 10003, 10009, 10010, 10011})


def on_domain(url: str, domain: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    domain = domain.lower().strip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


class Weibo(Channel):
    name: ClassVar[str] = "weibo"
    setup_url: ClassVar[str] = "https://open.weibo.com/apps"
    length: ClassVar[LengthRule] = LengthRule(limit=140, counting="hanzi")
    media: ClassVar[MediaLimits] = MediaLimits(max_images=1, max_image_bytes=5 * 1024 * 1024 - 1)
    idempotency: ClassVar[Idempotency] = Idempotency.NONE
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("access_token", "OAuth2 access token of the app (1 to 90 days)", secret=True),
        SettingSpec("safe_domain", "The app's registered safe domain (安全域名)"),
    )

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any], tracking_base_url: str) -> list[str]:
        domain = str(settings.get("safe_domain") or "")
        if not domain:
            return []
        if on_domain(tracking_base_url, domain):
            return []
        host = urlsplit(tracking_base_url).hostname or tracking_base_url
        return [
            f'tracked links are on "{host}", but Weibo only accepts posts with a URL on the '
            f'app\'s safe domain "{domain}": set tracking.base_url on that domain or register '
            f"{host} as the safe domain at {cls.setup_url}"
        ]

    def render(
        self, story: Story, variant: str | None, links: Links, settings: Mapping[str, Any]
    ) -> Post:
        text = self.short_text(story, variant, links)
        pic = story.images[0].path if story.images else None
        return Post(self.instance_name, text, {"status": text, "pic": pic}, (pic,) if pic else ())

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        form = {"access_token": self.secret("access_token"), "status": post.payload["status"]}
        url = f"{self.settings.get('api_base', DEFAULT_API)}/2/statuses/share.json"
        pic = post.payload.get("pic")
        files = None
        if pic:
            up = images.prepare(self.context.content_dir / str(pic), self.media.max_image_bytes)
            files = {"pic": (up.filename, up.data, up.mime)}
        resp = http.request(self, "POST", url, data=form, files=files)
        self._raise_for_error(resp)
        data = resp.json()
        idstr = str(data.get("idstr") or data["id"])
        return Receipt(remote_id=idstr, url=f"https://m.weibo.cn/status/{idstr}")

    def _raise_for_error(self, resp: requests.Response) -> None:
        data = http.body_json(resp)
        code = _code(data)
        if code is None:
            http.check(self, resp, "share")
            return
        message = f"share: {code} {data.get('error', '')}".strip()
        now = self.context.now()
        if code in AUTH_CODES:
            raise self.error(AuthProblem, message, hint=f"renew the access token: {self.setup_url}")
        if code in RATE_CODES:
            until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            raise self.error(RateLimited, message, until=until)
        if code in RETRY_CODES:
            raise self.error(RetryLater, message, retry_at=now + http.SERVER_ERROR_DELAY)
        raise self.error(ContentRejected, message)

    def metrics(self, receipt: Receipt) -> Metrics | None:
        resp = http.request(
            self,
            "GET",
            f"{self.settings.get('api_base', DEFAULT_API)}/2/statuses/count.json",
            params={"access_token": self.secret("access_token"), "ids": receipt.remote_id},
        )
        self._raise_for_error(resp)
        rows = resp.json()
        if not rows:
            return None
        row = rows[0]
        return Metrics(
            likes=row.get("attitudes"), reposts=row.get("reposts"), replies=row.get("comments")
        )


def _code(data: Any) -> int | None:
    if not isinstance(data, dict) or "error_code" not in data:
        return None
    try:
        return int(data["error_code"])
    except (TypeError, ValueError):
        return None
