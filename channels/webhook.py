"""A generic webhook: the story as JSON, signed, for a shop, a chat bridge or an automation tool.

Receivers verify ``X-Storyloop-Signature: t=<unix>,v1=<hex>``, where v1 is HMAC-SHA256 with the
shared secret over ``"<t>." + body``, and reject stale timestamps. ``Idempotency-Key`` carries
the delivery's identity so a receiver can ignore a resend after an unknown outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from channels import http
from channels.base import (
    Channel,
    DeliveryKey,
    Idempotency,
    LengthRule,
    Links,
    Post,
    Receipt,
    Removal,
    Removed,
    SettingSpec,
)
from channels.markup import clean_html
from channels.text import bcp47, offer_line, one_line, plain, rewrite_html_links
from publisher.model import Story

SIGNATURE_HEADER = "X-Storyloop-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class Webhook(Channel):
    name: ClassVar[str] = "webhook"
    setup_url: ClassVar[str] = (
        "https://github.com/storyloop/storyloop/blob/main/docs/CHANNELS.md#webhook"
    )
    length: ClassVar[LengthRule] = LengthRule(limit=0, counting="none")
    idempotency: ClassVar[Idempotency] = Idempotency.KEY
    utm_medium: ClassVar[str] = "referral"
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("url", "Where to POST, e.g. https://shop.example/hooks/storyloop"),
        SettingSpec("signing_secret", "Shared secret for the HMAC-SHA256 signature", secret=True),
    )

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        text = self.short_text(story, variant, links)
        payload = {
            "type": "storyloop.post",
            "channel": self.instance_name,
            "variant": variant,
            "text": text,
            "story": {
                "slug": story.slug,
                "headline": one_line(plain(story.headline(variant))),
                "title": one_line(plain(story.title)),
                "summary": plain(story.summary),
                "lang": bcp47(story.lang),
                "region": story.region,
                "category": story.category,
                "url": links.get(story.url),
                "canonical_url": story.url,
                "html": rewrite_html_links(clean_html(story.html, story.url), links.urls),
                "images": [{"url": i.url, "alt": i.alt} for i in story.images],
                "tags": list(story.tags),
                "store": story.store,
            },
            "offer": {
                "text": story.offer,
                "code": links.offer_code,
                "line": offer_line(story, links.offer_code),
            },
        }
        return Post(self.instance_name, text, payload)

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        document = {
            **post.payload,
            "delivery": {"id": key.id, "planned_at": key.planned_at.isoformat()},
        }
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        timestamp = int(self.context.now().timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": key.id,
            SIGNATURE_HEADER: sign(self.secret("signing_secret"), timestamp, body),
        }
        resp = http.request(self, "POST", str(self.settings["url"]), data=body, headers=headers)
        http.check(self, resp, "deliver")
        data = http.body_json(resp)
        remote = data.get("id") if isinstance(data, dict) else None
        return Receipt(remote_id=str(remote or key.id), url=None)

    def delete(self, receipt: Receipt) -> Removal:
        """What the receiver did with the document is its own: ask its owner to remove it."""
        return Removal(
            Removed.BY_HAND,
            f"a webhook cannot be recalled: ask the owner of {_host(self.settings)} to remove it",
        )


def _host(settings: Mapping[str, Any]) -> str:
    return urlsplit(str(settings.get("url", ""))).hostname or "the receiving system"
