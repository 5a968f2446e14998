"""Bluesky: an app.bsky.feed.post record with link facets and a link card, under a record key
derived from the delivery so a retry targets the same record (checked with getRecord first).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from channels import http, images
from channels.base import (
    AuthProblem,
    Channel,
    ChannelContext,
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
from channels.text import bcp47, byte_span, find_urls, graphemes, one_line, plain, truncate
from publisher.model import Story

DEFAULT_SERVICE = "https://bsky.social"
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
THUMB_BYTES = 1_000_000
KEY_ATTEMPTS = 4
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SESSION_ERRORS = ("ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthRequired")


def tid_for(key: DeliveryKey, attempt: int = 0) -> str:
    """A valid TID: 53 bits of microseconds (planned time) and a 10-bit clock id from the key."""
    planned = key.planned_at if key.planned_at.tzinfo else key.planned_at.replace(tzinfo=UTC)
    micros = ((planned - EPOCH) // _MICROSECOND) & ((1 << 53) - 1)
    digest = hashlib.sha256(f"{key.id}#{attempt}".encode()).digest()
    clock = int.from_bytes(digest[:2], "big") & 0x3FF
    n = (micros << 10) | clock
    return "".join(TID_ALPHABET[(n >> (5 * (12 - i))) & 31] for i in range(13))


_MICROSECOND = datetime.resolution


def link_facets(text: str) -> list[dict[str, Any]]:
    """One link facet per URL, indexed by UTF-8 byte offsets (the server does not detect links)."""
    facets = []
    for start, end in find_urls(text):
        b_start, b_end = byte_span(text, start, end)
        facets.append(
            {
                "index": {"byteStart": b_start, "byteEnd": b_end},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": text[start:end]}],
            }
        )
    return facets


def iso_z(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Bluesky(Channel):
    name: ClassVar[str] = "bluesky"
    setup_url: ClassVar[str] = "https://bsky.app/settings/app-passwords"
    length: ClassVar[LengthRule] = LengthRule(limit=300, counting="graphemes", max_bytes=3000)
    media: ClassVar[MediaLimits] = MediaLimits(max_images=4, max_image_bytes=2_000_000)
    idempotency: ClassVar[Idempotency] = Idempotency.RECORD_KEY
    deletion: ClassVar[Deletion] = Deletion.API
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("handle", "Your handle, e.g. cedarandclay.bsky.social"),
        SettingSpec("app_password", "An app password (Settings → App passwords)", secret=True),
        SettingSpec(
            "service", "Your PDS, when not Bluesky's own", required=False, default=DEFAULT_SERVICE
        ),
    )

    def __init__(self, settings: Mapping[str, Any], context: ChannelContext) -> None:
        super().__init__(settings, context)
        self._session: dict[str, str] | None = None

    @property
    def service(self) -> str:
        return str(self.settings["service"]).rstrip("/")

    @property
    def handle(self) -> str:
        return str(self.settings.get("handle", ""))

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        text = self.short_text(story, variant, links)
        card: dict[str, Any] = {
            "$type": "app.bsky.embed.external#external",
            "uri": links.get(story.url),
            "title": one_line(plain(story.headline(variant))),
            "description": truncate(plain(story.summary), 300, lambda t: len(graphemes(t))),
        }
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": iso_z(story.publish_at),
            "langs": [bcp47(story.lang)],
            "facets": link_facets(text),
            "embed": {"$type": "app.bsky.embed.external", "external": card},
        }
        thumb = story.images[0].path if story.images else None
        payload = {"record": record, "thumb": thumb}
        return Post(self.instance_name, text, payload, (thumb,) if thumb else ())

    # ------------------------------------------------------------------ session

    @property
    def _scope(self) -> str:
        return f"bluesky/{self.instance_name}"

    def session(self) -> dict[str, str]:
        """accessJwt and did: from memory, from the state every process shares, else
        createSession (which the network limits to 30 per 5 minutes: sessions are kept)."""
        if self._session is None:
            kept = self.context.state.get(self._scope, "session")
            if isinstance(kept, dict) and kept.get("accessJwt"):
                self._session = {str(k): str(v) for k, v in kept.items()}
            else:
                self._session = self._create_session()
        return self._session

    def _save(self, data: Mapping[str, Any]) -> dict[str, str]:
        keep = {k: str(data[k]) for k in ("accessJwt", "refreshJwt", "did", "handle") if k in data}
        self.context.state.put(self._scope, "session", keep)
        self._session = keep
        return keep

    def _create_session(self) -> dict[str, str]:
        body = {"identifier": self.handle, "password": self.secret("app_password")}
        resp = http.request(
            self, "POST", f"{self.service}/xrpc/com.atproto.server.createSession", json=body
        )
        if resp.status_code in (400, 401):
            raise self.error(AuthProblem, f"sign-in refused: {http.api_message(resp)}")
        return self._save(http.check(self, resp, "sign in").json())

    def _refresh(self) -> dict[str, str]:
        refresh = self.session().get("refreshJwt", "")
        resp = http.request(
            self,
            "POST",
            f"{self.service}/xrpc/com.atproto.server.refreshSession",
            headers={"Authorization": f"Bearer {refresh}"},
        )
        if resp.ok:
            return self._save(resp.json())
        return self._create_session()

    def _call(
        self, method: str, nsid: str, headers: Mapping[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        """An authenticated XRPC call; an expired access token is refreshed once."""
        for attempt in (0, 1):
            auth = {**(headers or {}), "Authorization": f"Bearer {self.session()['accessJwt']}"}
            resp = http.request(self, method, f"{self.service}/xrpc/{nsid}", headers=auth, **kw)
            if attempt == 0 and _session_expired(resp):
                self._refresh()
                continue
            return resp
        return resp

    # ------------------------------------------------------------------ posting

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        record = copy.deepcopy(dict(post.payload["record"]))
        for attempt in range(KEY_ATTEMPTS):
            rkey = tid_for(key, attempt)
            existing = self._get_record(rkey)
            if existing is None:
                self._note(key, rkey)
                return self._create(record, rkey, post.payload.get("thumb"))
            if existing.get("value", {}).get("text") == record["text"]:
                return self._found(rkey, existing)
        raise self.error(ContentRejected, "no free record key for this delivery")

    def _create(self, record: dict[str, Any], rkey: str, thumb: Any) -> Receipt:
        record["createdAt"] = iso_z(self.context.now())
        if thumb:
            record["embed"]["external"]["thumb"] = self._upload_blob(str(thumb))
        body = {
            "repo": self.session()["did"],
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": record,
        }
        resp = self._call("POST", "com.atproto.repo.createRecord", json=body)
        if resp.status_code >= 500 and (found := self._get_record(rkey)) is not None:
            return self._found(rkey, found)  # a duplicate create answers 500: the record is there
        data = http.check(self, resp, "create post").json()
        return self._receipt(rkey, str(data.get("cid", "")))

    def _upload_blob(self, path: str) -> Any:
        upload = images.prepare(self.context.content_dir / path, THUMB_BYTES, self.media.formats)
        resp = self._call(
            "POST",
            "com.atproto.repo.uploadBlob",
            headers={"Content-Type": upload.mime},
            data=upload.data,
        )
        return http.check(self, resp, "upload image").json()["blob"]

    def _get_record(self, rkey: str) -> dict[str, Any] | None:
        """getRecord's answer (``uri``, ``cid``, ``value``), or None when there is no record."""
        params = {"repo": self.handle, "collection": "app.bsky.feed.post", "rkey": rkey}
        resp = http.request(
            self, "GET", f"{self.service}/xrpc/com.atproto.repo.getRecord", params=params
        )
        if resp.status_code == 400 and _error_name(resp) == "RecordNotFound":
            return None
        data = http.check(self, resp, "check record").json()
        if not isinstance(data, Mapping):
            return {}
        value = data.get("value")
        return {**data, "value": dict(value) if isinstance(value, Mapping) else {}}

    def _found(self, rkey: str, found: Mapping[str, Any]) -> Receipt:
        """The receipt of a record getRecord found: its AT URI names the DID, as createRecord's
        does, even in a process that never signed in (the repo was asked for by handle)."""
        return self._receipt(rkey, str(found.get("cid", "")), str(found.get("uri", "")))

    def _receipt(self, rkey: str, cid: str = "", uri: str = "") -> Receipt:
        did = (self._session or {}).get("did", self.handle)
        return Receipt(
            remote_id=uri or f"at://{did}/app.bsky.feed.post/{rkey}",
            url=f"https://bsky.app/profile/{self.handle}/post/{rkey}",
            extra={"rkey": rkey, "cid": cid},
        )

    def _note(self, key: DeliveryKey, rkey: str) -> None:
        self.context.state.put(self._scope, f"rkey/{key.id}", rkey)

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        noted = self.context.state.get(self._scope, f"rkey/{key.id}")
        rkey = noted if isinstance(noted, str) else tid_for(key)
        found = self._get_record(rkey)
        return self._found(rkey, found) if found is not None else None

    def metrics(self, receipt: Receipt) -> Metrics | None:
        resp = self._call("GET", "app.bsky.feed.getPosts", params={"uris": receipt.remote_id})
        posts = http.check(self, resp, "read post").json().get("posts", [])
        if not posts:
            return None
        p = posts[0]
        return Metrics(
            likes=p.get("likeCount"),
            reposts=int(p.get("repostCount", 0)) + int(p.get("quoteCount", 0)),
            replies=p.get("replyCount"),
        )

    # ------------------------------------------------------------------ taking back

    def delete(self, receipt: Receipt) -> Removal:
        """``com.atproto.repo.deleteRecord`` on our own repo, by the record key of the post."""
        rkey = record_key(receipt)
        body = {"repo": self.session()["did"], "collection": "app.bsky.feed.post", "rkey": rkey}
        resp = self._call("POST", "com.atproto.repo.deleteRecord", json=body)
        if resp.status_code == 400 and _error_name(resp) == "RecordNotFound":
            return Removal(Removed.GONE, http.api_message(resp))
        http.check(self, resp, "delete post")
        return Removal(Removed.REMOVED)

    def exists(self, receipt: Receipt) -> bool | None:
        return self._get_record(record_key(receipt)) is not None


def record_key(receipt: Receipt) -> str:
    """The post's record key: the receipt's own, else the last part of its AT URI."""
    return str(receipt.extra.get("rkey") or receipt.remote_id.rsplit("/", 1)[-1])


def _error_name(resp: requests.Response) -> str:
    data = http.body_json(resp)
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def _session_expired(resp: requests.Response) -> bool:
    return resp.status_code in (400, 401) and _error_name(resp) in _SESSION_ERRORS
