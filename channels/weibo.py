"""Weibo: statuses/share.json, 140 汉字 counted in halves of UTF-16 units, and the text must
carry a URL on the app's registered safe domain. A tracked-link domain that differs is a settings
error reported by ``storyloop check``, not a post that fails every day.

Weibo reads ``#话题#`` as a topic and a lone ``#`` as the start of one that runs to the next
``#``: a lone one is posted as the full-width ``＃`` (and reported by ``storyloop check``), and
truncation keeps a topic whole or drops it whole.
"""

from __future__ import annotations

import dataclasses
import re
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
    Deletion,
    DeliveryKey,
    Idempotency,
    LengthRule,
    Links,
    MediaLimits,
    Metrics,
    Post,
    RateLimited,
    Receipt,
    Removal,
    Removed,
    RetryLater,
    SettingSpec,
)
from channels.text import find_urls
from publisher.model import Story

DEFAULT_API = "https://api.weibo.com"
AUTH_CODES = frozenset({21301, 21314, 21315, 21316, 21317, 21319, 21325, 21327, 21332})
RATE_CODES = frozenset({10022, 10023, 10024})
RETRY_CODES = frozenset({10001, 10003, 10009, 10010, 10011})
GONE_CODE = 20101  # "Target weibo does not exist!"


TOPIC_RE = re.compile(r"#([^#\n]{1,64})#")
LONE_HASH = "＃"
TOPIC_FIELDS = ("title", "summary", "offer")


def topic_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the ``#话题#`` pairs in ``text``, left to right, ``#`` inside URLs ignored."""
    masked = _mask_urls(text)
    return [m.span() for m in TOPIC_RE.finditer(masked) if m.group(1).strip()]


def lone_hashes(text: str) -> list[int]:
    """Offsets of the ``#`` that pair with nothing (Weibo would open a topic there)."""
    paired = {i for s, e in topic_spans(text) for i in (s, e - 1)}
    masked = _mask_urls(text)
    return [i for i, ch in enumerate(masked) if ch == "#" and i not in paired]


def pair_topics(text: str) -> str:
    """``text`` with every lone ``#`` as the full-width ``＃``, which Weibo shows as is."""
    lone = set(lone_hashes(text))
    return "".join(LONE_HASH if i in lone else ch for i, ch in enumerate(text))


def _mask_urls(text: str) -> str:
    for start, end in find_urls(text):
        text = text[:start] + "u" * (end - start) + text[end:]
    return text


def on_domain(url: str, domain: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    domain = domain.lower().strip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


class Weibo(Channel):
    name: ClassVar[str] = "weibo"
    setup_url: ClassVar[str] = "https://open.weibo.com/apps"
    length: ClassVar[LengthRule] = LengthRule(limit=140, counting="weibo")
    media: ClassVar[MediaLimits] = MediaLimits(max_images=1, max_image_bytes=5 * 1024 * 1024 - 1)
    idempotency: ClassVar[Idempotency] = Idempotency.NONE
    deletion: ClassVar[Deletion] = Deletion.API
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("access_token", "OAuth2 access token of the app (1 to 90 days)", secret=True),
        SettingSpec("safe_domain", "The app's registered safe domain (安全域名)"),
        SettingSpec(
            "api_base",
            "Where Weibo's API is reached (a test server, with allow_http)",
            required=False,
            default=DEFAULT_API,
        ),
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

    @classmethod
    def check_story(
        cls, header: Mapping[str, str], settings: Mapping[str, Any]
    ) -> list[tuple[str, str, str]]:
        problems = []
        names = [*TOPIC_FIELDS, *(k for k in header if k.startswith("headline-"))]
        names += [f"{n}-text" for n in ("weibo", str(settings.get("name") or "weibo"))]
        for name in dict.fromkeys(names):
            value = header.get(name) or ""
            if lone_hashes(value):
                problems.append(
                    (
                        name,
                        f"unpaired '#' in {value!r}: Weibo reads '#' as the start of a #topic#",
                        "topics written as #话题# pairs; a lone # is posted as ＃",
                    )
                )
        return problems

    def protected_spans(self, text: str) -> list[tuple[int, int]]:
        return topic_spans(text)

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        text = self.short_text(_paired(story), variant, links)
        pic = story.images[0].path if story.images else None
        return Post(self.instance_name, text, {"status": text, "pic": pic}, (pic,) if pic else ())

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        form = {"access_token": self.secret("access_token"), "status": post.payload["status"]}
        url = f"{self.settings['api_base']}/2/statuses/share.json"
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

    def delete(self, receipt: Receipt) -> Removal:
        """``statuses/destroy.json`` (POST ``id``); error 20101: the post is gone already."""
        form = {"access_token": self.secret("access_token"), "id": receipt.remote_id}
        url = f"{self.settings['api_base']}/2/statuses/destroy.json"
        resp = http.request(self, "POST", url, data=form)
        if _code(http.body_json(resp)) == GONE_CODE:
            return Removal(Removed.GONE, "20101 target weibo does not exist")
        self._raise_for_error(resp)
        return Removal(Removed.REMOVED)

    def exists(self, receipt: Receipt) -> bool | None:
        resp = http.request(
            self,
            "GET",
            f"{self.settings['api_base']}/2/statuses/show.json",
            params={"access_token": self.secret("access_token"), "id": receipt.remote_id},
        )
        if _code(http.body_json(resp)) == GONE_CODE:
            return False
        self._raise_for_error(resp)
        return True

    def metrics(self, receipt: Receipt) -> Metrics | None:
        resp = http.request(
            self,
            "GET",
            f"{self.settings['api_base']}/2/statuses/count.json",
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


def _paired(story: Story) -> Story:
    """The story with lone '#' made full-width in everything a post shows."""
    return dataclasses.replace(
        story,
        title=pair_topics(story.title),
        summary=pair_topics(story.summary),
        offer=pair_topics(story.offer) if story.offer else story.offer,
        variants={k: pair_topics(v) for k, v in story.variants.items()},
        overrides={k: pair_topics(v) for k, v in story.overrides.items()},
    )


def _code(data: Any) -> int | None:
    if not isinstance(data, dict) or "error_code" not in data:
        return None
    try:
        return int(data["error_code"])
    except (TypeError, ValueError):
        return None
