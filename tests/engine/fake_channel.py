"""Adapters for ``fake_network.py``: thin HTTP clients mapping failures through ``channels.http``
exactly as the real adapters do, one per idempotency strategy.

Configured in test settings as ``"type": "tests.engine.fake_channel:KeyedChannel"`` (or
``LookupChannel``, ``DraftChannel``, ``PlainChannel``) with ``"url"`` the network's address.
"""

from __future__ import annotations

import os
from typing import ClassVar

from channels import http
from channels.base import (
    Channel,
    DeliveryKey,
    Idempotency,
    LengthRule,
    Links,
    Post,
    Receipt,
    SettingSpec,
)
from publisher.model import Story


class KeyedChannel(Channel):
    """Sends an Idempotency-Key, kept by the network as long as ``idempotency_key_hours`` says."""

    name: ClassVar[str] = "fake"
    setup_url: ClassVar[str] = "http://127.0.0.1/"
    length: ClassVar[LengthRule] = LengthRule(limit=500, counting="chars")
    idempotency: ClassVar[Idempotency] = Idempotency.KEY
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (SettingSpec("url", "server URL"),)

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        text = f"{story.headline(variant)} {links.get(story.url)}"
        return Post(self.instance_name, text, {"text": text})

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        headers = {"Idempotency-Key": key.id, "X-Worker": str(os.getpid())}
        body = {**post.payload, "ref": key.id}
        resp = http.request(
            self, "POST", f"{self.settings['url']}/posts", json=body, headers=headers
        )
        data = http.check(self, resp, "post").json()
        return Receipt(remote_id=str(data["id"]), url=str(data["url"]))


class LookupChannel(KeyedChannel):
    """The network ignores keys, but lists the posts made for a delivery."""

    idempotency: ClassVar[Idempotency] = Idempotency.LOOKUP

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        resp = http.request(self, "GET", f"{self.settings['url']}/posts", params={"ref": key.id})
        found = http.check(self, resp, "look up").json()
        return Receipt(remote_id=str(found[0]["id"]), url=str(found[0]["url"])) if found else None


class PlainChannel(KeyedChannel):
    """No way to know: an unanswered request is held for a person."""

    idempotency: ClassVar[Idempotency] = Idempotency.NONE


class DraftChannel(KeyedChannel):
    """WeChat's shape (``fake_network.py --drafts``): a draft, then publishing it. The network
    finds a post only by its draft, whose id the adapter keeps in the context's state store the
    moment it has it: a lease that runs out on one machine is then looked up on another."""

    idempotency: ClassVar[Idempotency] = Idempotency.LOOKUP

    def _headers(self) -> dict[str, str]:
        return {"X-Worker": str(os.getpid())}

    @property
    def _scope(self) -> str:
        return f"draft/{self.instance_name}"

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        draft = self.context.state.get(self._scope, key.id)
        if draft is None:
            body = {**post.payload, "ref": key.id}
            url = f"{self.settings['url']}/drafts"
            resp = http.request(self, "POST", url, json=body, headers=self._headers())
            draft = str(http.check(self, resp, "draft").json()["draft"])
            self.context.state.put(self._scope, key.id, draft)
        url = f"{self.settings['url']}/publish"
        resp = http.request(self, "POST", url, json={"draft": draft}, headers=self._headers())
        data = http.check(self, resp, "publish").json()
        return Receipt(remote_id=str(data["id"]), url=str(data["url"]))

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        draft = self.context.state.get(self._scope, key.id)
        if draft is None:
            return None  # no draft known: nothing can have been published from it
        url = f"{self.settings['url']}/posts"
        found = http.check(self, http.request(self, "GET", url, params={"draft": draft}), "look up")
        posts = found.json()
        return Receipt(remote_id=str(posts[0]["id"]), url=str(posts[0]["url"])) if posts else None
