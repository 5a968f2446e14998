"""The outbox: posts written to ``var/outbox/<channel>/`` instead of a network.

Used on purpose (``type: "outbox"``) and automatically for any configured channel without
credentials: then it renders with the real adapter, so the file shows exactly the payload that
network would have received. Writes are atomic (temp file + ``os.replace``) and idempotent: the
same delivery key always maps to the same two files and the same receipt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from channels.base import (
    Channel,
    ChannelContext,
    Deletion,
    DeliveryKey,
    Idempotency,
    LengthRule,
    Links,
    MediaLimits,
    Post,
    Receipt,
    Removal,
    Removed,
    Secret,
)
from channels.files import write_atomically
from channels.text import counter_for, standard_text
from publisher.model import Story

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_filename(key_id: str) -> str:
    name = _UNSAFE.sub("_", key_id).lstrip(".")
    return name or "_"


class Outbox(Channel):
    name: ClassVar[str] = "outbox"
    setup_url: ClassVar[str] = "https://github.com/storyloop/storyloop/blob/main/docs/CHANNELS.md"
    length: ClassVar[LengthRule] = LengthRule(limit=0, counting="none")
    media: ClassVar[MediaLimits] = MediaLimits(max_images=4, max_image_bytes=0)
    idempotency: ClassVar[Idempotency] = Idempotency.LOOKUP
    deletion: ClassVar[Deletion] = Deletion.API  # its own files

    def __init__(
        self, settings: Mapping[str, Any], context: ChannelContext, inner: Channel | None = None
    ) -> None:
        super().__init__(settings, context)
        self.inner = inner
        self.folder = context.var_dir / "outbox" / self.instance_name
        self._folder_uri = self.folder.absolute().as_uri()
        self._made = False

    def __repr__(self) -> str:
        inner = f" for {type(self.inner).__name__}" if self.inner else ""
        return f"<Outbox {self.instance_name!r}{inner}>"

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        if self.inner is not None:
            return self.inner.render(story, variant, links)
        text = standard_text(
            story,
            variant,
            links.urls,
            links.offer_code,
            None,
            counter_for("none"),
            story.overrides.get(self.instance_name),
        )
        images = tuple(i.path for i in story.images[: self.media.max_images])
        return Post(self.instance_name, text, {"text": text, "url": links.get(story.url)}, images)

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        stem = self.folder / safe_filename(key.id)
        json_path = stem.with_suffix(".json")
        if json_path.exists():
            found = self._read(json_path)
            if found is not None:
                return found
        # safe_filename leaves nothing a URI would escape
        receipt = Receipt(remote_id=key.id, url=f"{self._folder_uri}/{json_path.name}")
        record = {
            "channel": self.instance_name,
            "adapter": type(self.inner).name if self.inner else self.name,
            "remote_id": receipt.remote_id,
            "url": receipt.url,
            "key": {"id": key.id, "planned_at": key.planned_at.isoformat()},
            "text": post.text,
            "images": list(post.images),
            "payload": _jsonable(post.payload),
        }
        self._ensure_folder()
        write_atomically(stem.with_suffix(".txt"), post.text + "\n")
        # the .txt is the readable one; this one is for machines (and json's C encoder)
        write_atomically(json_path, json.dumps(record, ensure_ascii=False) + "\n")
        return receipt

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        return self._read((self.folder / safe_filename(key.id)).with_suffix(".json"))

    def _files(self, receipt: Receipt) -> list[Path]:
        stem = self.folder / safe_filename(receipt.remote_id)
        return [stem.with_suffix(".json"), stem.with_suffix(".txt")]

    def delete(self, receipt: Receipt) -> Removal:
        """The two files of the post. None there while the channel stands in for a network
        without credentials: the post went to that network before, and is removed there."""
        found = [p for p in self._files(receipt) if p.exists()]
        for path in found:
            path.unlink(missing_ok=True)
        if found:
            return Removal(Removed.REMOVED)
        if self.inner is not None:
            return Removal(
                Removed.BY_HAND,
                f"{self.instance_name} has no credentials now: delete the post by hand",
            )
        return Removal(Removed.GONE)

    def exists(self, receipt: Receipt) -> bool | None:
        return any(p.exists() for p in self._files(receipt))

    def _ensure_folder(self) -> None:
        if not self._made:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made = True

    @staticmethod
    def _read(path: Path) -> Receipt | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return Receipt(remote_id=str(data["remote_id"]), url=data.get("url"))


def _jsonable(value: Any) -> Any:
    """The payload as JSON; a secret that slipped in is written masked, never revealed."""
    if isinstance(value, Secret):
        return "***"
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
