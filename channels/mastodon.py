"""Mastodon: a status with the tracked link, images uploaded first, an Idempotency-Key header."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from channels import http, images
from channels.base import (
    Channel,
    ContentRejected,
    Deletion,
    DeliveryKey,
    Idempotency,
    Kind,
    LengthRule,
    Links,
    MediaLimits,
    Metrics,
    Post,
    Receipt,
    Removal,
    Removed,
    RetryLater,
    SettingSpec,
)
from channels.text import bcp47, counter_for, find_urls
from publisher.model import Story

MEDIA_POLLS = 30


class Mastodon(Channel):
    name: ClassVar[str] = "mastodon"
    setup_url: ClassVar[str] = "https://docs.joinmastodon.org/client/token/"
    length: ClassVar[LengthRule] = LengthRule(limit=500, counting="mastodon", url_weight=23)
    media: ClassVar[MediaLimits] = MediaLimits(max_images=4, max_image_bytes=16 * 1024 * 1024)
    idempotency: ClassVar[Idempotency] = Idempotency.KEY
    key_kept: ClassVar[timedelta | None] = timedelta(hours=1)  # Mastodon's Idempotency-Key
    deletion: ClassVar[Deletion] = Deletion.API
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("instance", "Your server's address, e.g. https://mastodon.social"),
        SettingSpec("token", "Access token with write:statuses and write:media", secret=True),
        SettingSpec(
            "visibility",
            "Who sees the posts",
            required=False,
            kind=Kind.CHOICE,
            default="public",
            choices=("public", "unlisted", "private", "direct"),
        ),
        SettingSpec(
            "max_characters", "The server's post limit when not 500", required=False, kind=Kind.INT
        ),
        SettingSpec(
            "poll_interval",
            "Seconds between looks at an image the server is still processing",
            required=False,
            kind=Kind.NUMBER,
            default=1.0,
        ),
    )

    def __init__(self, settings: Mapping[str, Any], context: Any) -> None:
        super().__init__(settings, context)
        self._limit: int | None = None

    @property
    def base(self) -> str:
        return str(self.settings.get("instance", "")).rstrip("/")

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        conf = self.settings
        limit = self._limit or int(conf.get("max_characters") or self.length.limit)
        text = self.short_text(story, variant, links, limit)
        media = [{"path": i.path, "description": i.alt} for i in story.images[:4]]
        payload = {
            "status": text,
            "visibility": str(conf["visibility"]),
            "language": bcp47(story.lang).split("-")[0],
            "media": media,
        }
        return Post(self.instance_name, text, payload, tuple(m["path"] for m in media))

    # ------------------------------------------------------------------ network

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret('token')}"}

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        status = str(post.payload["status"])
        limit = self.instance_limit()
        if counter_for("mastodon", 23)(status) > limit:
            raise self.error(
                ContentRejected,
                f"the server allows {limit} characters per post",
                hint=f"set max_characters: {limit} for this channel",
            )
        media_ids = [self._upload(m) for m in post.payload.get("media", [])]
        self._remember(key, status)
        form: dict[str, Any] = {
            "status": status,
            "visibility": post.payload.get("visibility", "public"),
            "language": post.payload.get("language"),
        }
        if media_ids:
            form["media_ids[]"] = media_ids
        headers = {**self._auth(), "Idempotency-Key": key.id}
        resp = http.request(
            self, "POST", f"{self.base}/api/v1/statuses", data=form, headers=headers
        )
        data = http.check(self, resp, "post status").json()
        return Receipt(
            remote_id=str(data["id"]), url=data.get("url"), extra={"uri": data.get("uri")}
        )

    def instance_limit(self) -> int:
        """The server's own limit from /api/v2/instance, cached; the setting when unreachable."""
        if self._limit is not None:
            return self._limit
        configured = int(self.settings.get("max_characters") or self.length.limit)
        try:
            resp = self.context.session.get(f"{self.base}/api/v2/instance", timeout=5)
            statuses = resp.json()["configuration"]["statuses"]
            self._limit = int(statuses["max_characters"])
        except Exception:  # unreachable or an old server: keep the configured limit
            self._limit = configured
        return self._limit

    def _upload(self, media: Mapping[str, Any]) -> str:
        upload = images.prepare(
            self.context.content_dir / str(media["path"]),
            self.media.max_image_bytes,
            self.media.formats,
        )
        resp = http.request(
            self,
            "POST",
            f"{self.base}/api/v2/media",
            files={"file": (upload.filename, upload.data, upload.mime)},
            data={"description": str(media.get("description", ""))},
            headers=self._auth(),
        )
        data = http.check(self, resp, "upload image").json()
        if resp.status_code == 202:
            self._wait_for_media(str(data["id"]))
        return str(data["id"])

    def _wait_for_media(self, media_id: str) -> None:
        interval = float(self.settings["poll_interval"])
        for _ in range(MEDIA_POLLS):
            resp = http.request(
                self, "GET", f"{self.base}/api/v1/media/{media_id}", headers=self._auth()
            )
            if resp.status_code == 200:
                return
            if resp.status_code != 206:
                raise http.failure(self, resp, "image processing")
            time.sleep(interval)
        now = self.context.now()
        raise self.error(
            RetryLater, "image still processing", retry_at=now + http.CONNECT_ERROR_DELAY
        )

    def _remember(self, key: DeliveryKey, status: str) -> None:
        """The status text, kept for :meth:`lookup` (its tracked link is unique per delivery)."""
        self.context.state.put(f"mastodon/{self.instance_name}", key.id, {"status": status})

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        """Our own recent statuses, matched on the delivery's tracked link (unique per delivery)."""
        kept = self.context.state.get(f"mastodon/{self.instance_name}", key.id)
        status = kept.get("status") if isinstance(kept, dict) else None
        if not isinstance(status, str):
            return None
        urls = [status[s:e] for s, e in find_urls(status)]
        if not urls:
            return None
        me = http.request(
            self, "GET", f"{self.base}/api/v1/accounts/verify_credentials", headers=self._auth()
        )
        account = http.check(self, me, "look up account").json()["id"]
        resp = http.request(
            self,
            "GET",
            f"{self.base}/api/v1/accounts/{account}/statuses",
            params={"limit": 40},
            headers=self._auth(),
        )
        for item in http.check(self, resp, "look up statuses").json():
            if all(url in str(item.get("content", "")) for url in urls):
                return Receipt(remote_id=str(item["id"]), url=item.get("url"))
        return None

    def metrics(self, receipt: Receipt) -> Metrics | None:
        resp = http.request(
            self, "GET", f"{self.base}/api/v1/statuses/{receipt.remote_id}", headers=self._auth()
        )
        data = http.check(self, resp, "read status").json()
        return Metrics(
            likes=data.get("favourites_count"),
            reposts=data.get("reblogs_count"),
            replies=data.get("replies_count"),
        )

    def _status_url(self, receipt: Receipt) -> str:
        return f"{self.base}/api/v1/statuses/{quote(receipt.remote_id, safe='')}"

    def delete(self, receipt: Receipt) -> Removal:
        """``DELETE /api/v1/statuses/:id`` (needs ``write:statuses``); 404: deleted already."""
        resp = http.request(self, "DELETE", self._status_url(receipt), headers=self._auth())
        if resp.status_code == 404:
            return Removal(Removed.GONE, http.api_message(resp))
        http.check(self, resp, "delete status")
        return Removal(Removed.REMOVED)

    def exists(self, receipt: Receipt) -> bool | None:
        resp = http.request(self, "GET", self._status_url(receipt), headers=self._auth())
        if resp.status_code == 404:
            return False
        http.check(self, resp, "read status")
        return True
