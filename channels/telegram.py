"""Telegram: a bot posts to a channel, in HTML mode, with a link preview of the story.

The Bot API has no idempotency: a request that timed out may have posted, so it is an unknown
outcome the engine holds for a person (or resends when the channel's settings say so).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, ClassVar

from channels import http, images
from channels.base import (
    Channel,
    Deletion,
    DeliveryKey,
    Idempotency,
    Kind,
    LengthRule,
    Links,
    MediaLimits,
    Post,
    RateLimited,
    Receipt,
    Removal,
    Removed,
    SettingSpec,
)
from channels.text import escape_html, one_line, plain
from publisher.model import Story

DEFAULT_API = "https://api.telegram.org"
CAPTION_LIMIT = 1024
PHOTO_BYTES = 10 * 1024 * 1024

logging.getLogger("urllib3.connectionpool").addFilter(http.RedactTokens(r"bot\d+:[\w-]+"))


class Telegram(Channel):
    name: ClassVar[str] = "telegram"
    setup_url: ClassVar[str] = "https://core.telegram.org/bots/features#botfather"
    length: ClassVar[LengthRule] = LengthRule(limit=4096, counting="utf16")
    media: ClassVar[MediaLimits] = MediaLimits(max_images=1, max_image_bytes=PHOTO_BYTES)
    idempotency: ClassVar[Idempotency] = Idempotency.NONE
    # a bot may delete its channel posts only while they are younger than 48 hours
    deletion: ClassVar[Deletion] = Deletion.API_WITHIN
    delete_within: ClassVar[timedelta | None] = timedelta(hours=48)
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("chat_id", "The channel: @channelname or its numeric id"),
        SettingSpec(
            "bot_token", "The token @BotFather gave your bot (an admin of the channel)", secret=True
        ),
        SettingSpec(
            "photos",
            "Post the story's first image with a caption",
            required=False,
            kind=Kind.BOOL,
            default=True,
        ),
        SettingSpec(
            "api_base",
            "Where Telegram's API is reached (a test server, with allow_http)",
            required=False,
            default=DEFAULT_API,
        ),
    )

    @property
    def chat_id(self) -> str:
        return str(self.settings.get("chat_id", ""))

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        conf = self.settings
        photo = story.images[0] if story.images and conf["photos"] else None
        limit = CAPTION_LIMIT if photo else self.length.limit
        text = self.short_text(story, variant, links, limit)
        headline = one_line(plain(story.headline(variant))).strip()
        markup = _bold_headline(text, headline, self.override_for(story))
        base: dict[str, Any] = {"chat_id": self.chat_id, "parse_mode": "HTML"}
        if photo:
            payload = {"method": "sendPhoto", **base, "caption": markup, "photo": photo.path}
            return Post(self.instance_name, text, payload, (photo.path,))
        preview = {"url": links.get(story.url), "prefer_large_media": True}
        payload = {"method": "sendMessage", **base, "text": markup, "link_preview_options": preview}
        return Post(self.instance_name, text, payload)

    def _method_url(self, method: str) -> str:
        return f"{self.settings['api_base']}/bot{self.secret('bot_token')}/{method}"

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        payload = dict(post.payload)
        method = str(payload.pop("method"))
        url = self._method_url(method)
        if method == "sendPhoto":
            upload = images.prepare(
                self.context.content_dir / str(payload.pop("photo")), PHOTO_BYTES
            )
            files = {"photo": (upload.filename, upload.data, upload.mime)}
            resp = http.request(self, "POST", url, data=payload, files=files)
        else:
            resp = http.request(self, "POST", url, json=payload)
        data = self._checked(resp, method)
        message_id = str(data["result"]["message_id"]) if isinstance(data, dict) else ""
        return Receipt(remote_id=message_id, url=self._public_url(message_id))

    def _checked(self, resp: Any, method: str) -> Any:
        data = http.body_json(resp)
        if resp.status_code == 429 and isinstance(data, dict):
            retry_after = (data.get("parameters") or {}).get("retry_after")
            now = self.context.now()
            until = http.reset_time(resp.headers, now, retry_after) or now + http.RATE_LIMIT_DELAY
            raise self.error(RateLimited, f"{method}: {http.api_message(resp)}", until=until)
        http.check(self, resp, method)
        return data

    def delete(self, receipt: Receipt) -> Removal:
        """``deleteMessage``: Telegram answers 400 for a message gone already ("not found") and
        for one older than 48 hours ("can't be deleted"): that one a person deletes in the app."""
        body = {"chat_id": self.chat_id, "message_id": receipt.remote_id}
        resp = http.request(self, "POST", self._method_url("deleteMessage"), json=body)
        if resp.status_code == 400:
            words = http.api_message(resp)
            if "not found" in words.lower():
                return Removal(Removed.GONE, words)
            if "can't be deleted" in words.lower() or "cannot be deleted" in words.lower():
                return Removal(Removed.BY_HAND, f"Telegram: {words}")
        self._checked(resp, "deleteMessage")
        return Removal(Removed.REMOVED)

    def _public_url(self, message_id: str) -> str | None:
        if self.chat_id.startswith("@"):
            return f"https://t.me/{self.chat_id[1:]}/{message_id}"
        return None


def _bold_headline(text: str, headline: str, override: str | None) -> str:
    """Telegram HTML: escape &, < and >, and set the headline in bold."""
    if override is None and headline and text.startswith(headline):
        return f"<b>{escape_html(headline)}</b>{escape_html(text[len(headline) :])}"
    return escape_html(text)
