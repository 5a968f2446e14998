"""X: 280 weighted characters (CJK and emoji weigh 2, every URL 23), images uploaded first.

X offers no idempotency and answers a repeated text with 403 "duplicate content" without the
original id: that is a rejection, and an unanswered request is an unknown outcome.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import requests

from channels import http, images
from channels.base import (
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
    Receipt,
    Removal,
    Removed,
    SettingSpec,
)
from publisher.model import Story

DEFAULT_API = "https://api.x.com"


class X(Channel):
    name: ClassVar[str] = "x"
    setup_url: ClassVar[str] = "https://developer.x.com/en/portal/dashboard"
    length: ClassVar[LengthRule] = LengthRule(limit=280, counting="weighted", url_weight=23)
    media: ClassVar[MediaLimits] = MediaLimits(max_images=4, max_image_bytes=5 * 1024 * 1024)
    idempotency: ClassVar[Idempotency] = Idempotency.NONE
    deletion: ClassVar[Deletion] = Deletion.API
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("access_token", "OAuth 2.0 user token with tweet.write", secret=True),
        SettingSpec("username", "The account's @name, for post links", required=False),
        SettingSpec(
            "api_base",
            "Where X's API is reached (a test server, with allow_http)",
            required=False,
            default=DEFAULT_API,
        ),
    )

    @property
    def api(self) -> str:
        return str(self.settings["api_base"]).rstrip("/")

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        text = self.short_text(story, variant, links)
        media = [{"path": i.path, "alt": i.alt} for i in story.images[: self.media.max_images]]
        payload = {"text": text, "media": media}
        return Post(self.instance_name, text, payload, tuple(m["path"] for m in media))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret('access_token')}"}

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        body: dict[str, Any] = {"text": post.payload["text"]}
        ids = [self._upload(str(m["path"])) for m in post.payload.get("media", [])]
        if ids:
            body["media"] = {"media_ids": ids}
        resp = http.request(self, "POST", f"{self.api}/2/tweets", json=body, headers=self._auth())
        self._reject_duplicate(resp)
        data = http.check(self, resp, "post").json()["data"]
        user = self.settings.get("username")
        url = f"https://x.com/{user}/status/{data['id']}" if user else None
        return Receipt(remote_id=str(data["id"]), url=url)

    def _reject_duplicate(self, resp: requests.Response) -> None:
        if resp.status_code == 403 and "duplicate" in http.api_message(resp).lower():
            raise self.error(ContentRejected, f"post: {http.api_message(resp)}")

    def _upload(self, path: str) -> str:
        upload = images.prepare(
            self.context.content_dir / path, self.media.max_image_bytes, self.media.formats
        )
        resp = http.request(
            self,
            "POST",
            f"{self.api}/2/media/upload",
            files={"media": (upload.filename, upload.data, upload.mime)},
            data={"media_category": "tweet_image"},
            headers=self._auth(),
        )
        return str(http.check(self, resp, "upload image").json()["data"]["id"])

    def metrics(self, receipt: Receipt) -> Metrics | None:
        resp = http.request(
            self,
            "GET",
            f"{self.api}/2/tweets/{receipt.remote_id}",
            params={"tweet.fields": "public_metrics"},
            headers=self._auth(),
        )
        m = http.check(self, resp, "read post").json()["data"].get("public_metrics", {})
        return Metrics(
            likes=m.get("like_count"),
            reposts=int(m.get("retweet_count", 0)) + int(m.get("quote_count", 0)),
            replies=m.get("reply_count"),
            views=m.get("impression_count"),
        )

    def _post_url(self, receipt: Receipt) -> str:
        return f"{self.api}/2/tweets/{quote(receipt.remote_id, safe='')}"

    def delete(self, receipt: Receipt) -> Removal:
        """``DELETE /2/tweets/:id`` answers ``{"data": {"deleted": true}}``."""
        resp = http.request(self, "DELETE", self._post_url(receipt), headers=self._auth())
        if resp.status_code == 404:
            return Removal(Removed.GONE, http.api_message(resp))
        data = http.body_json(http.check(self, resp, "delete post"))
        if isinstance(data, dict) and (data.get("data") or {}).get("deleted") is True:
            return Removal(Removed.REMOVED)
        if self.exists(receipt) is False:
            return Removal(Removed.GONE, "not found")
        raise self.error(ContentRejected, f"delete post: {http.api_message(resp)}")

    def exists(self, receipt: Receipt) -> bool | None:
        """A post lookup answers 200 with ``errors`` (resource-not-found) and no ``data``."""
        resp = http.request(self, "GET", self._post_url(receipt), headers=self._auth())
        if resp.status_code == 404:
            return False
        data = http.body_json(http.check(self, resp, "read post"))
        return isinstance(data, dict) and bool(data.get("data"))
