"""The adapter for ``fake_server.py``: a thin HTTP client mapping failures like a real adapter.

Configured in test settings as ``"type": "tests.engine.fake_channel:FakeChannel"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import requests

from channels.base import (
    Channel,
    DeliveryKey,
    Idempotency,
    LengthRule,
    Links,
    OutcomeUnknown,
    Post,
    Receipt,
    RetryLater,
    SettingSpec,
)
from publisher.model import Story


class FakeChannel(Channel):
    name: ClassVar[str] = "fake"
    setup_url: ClassVar[str] = "http://127.0.0.1/"
    length: ClassVar[LengthRule] = LengthRule(limit=500, counting="chars")
    idempotency: ClassVar[Idempotency] = Idempotency.KEY
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (SettingSpec("url", "server URL"),)

    def render(
        self, story: Story, variant: str | None, links: Links, settings: Mapping[str, Any]
    ) -> Post:
        text = f"{story.headline(variant)} {links.get(story.url)}"
        return Post(self.instance_name, text, {"text": text})

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        try:
            response = requests.post(
                f"{self.settings['url']}/posts",
                json=dict(post.payload),
                headers={"Idempotency-Key": key.id},
                timeout=(2, 5),
            )
        except requests.ConnectionError as exc:
            raise RetryLater(f"cannot connect: {exc}", channel=self.instance_name) from exc
        except requests.Timeout as exc:
            raise OutcomeUnknown("no answer", channel=self.instance_name) from exc
        if response.status_code >= 500:
            raise RetryLater(f"HTTP {response.status_code}", channel=self.instance_name)
        data = response.json()
        return Receipt(remote_id=str(data["id"]), url=str(data["url"]))
