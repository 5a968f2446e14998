"""WeChat Official Account (微信公众号): an article, published in steps.

cover upload (add_material, JPEG ≤ 64 KB) → body images (uploadimg) → draft/add → freepublish/submit
→ poll freepublish/get until published. Each id is recorded the moment it is known, so a retry
resumes where the last attempt stopped instead of making a second draft. The access token comes
from ``stable_token``, cached in the context's state store (the engine's database), so every
process on every machine shares one, and is refetched once when WeChat says it is invalid
(40001, 40014, 42001). The ids of a post in progress are in the same store: a lease that runs
out on one machine is resumed or looked up on another. Every answer is HTTP 200 with ``errcode``.

Metrics come from ``datacube/getarticletotaldetail``, asked for the days the article may have
gone out on; the statistics id (``msgid``) and those days are in the receipt, which the engine
hands back to ``metrics()`` whole. How far the figures are final is kept in the state store.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import requests
from bs4 import BeautifulSoup, Tag

from channels import http, images
from channels.base import (
    AuthProblem,
    Channel,
    ChannelContext,
    ContentRejected,
    Deletion,
    DeliveryKey,
    Idempotency,
    Kind,
    LengthRule,
    Links,
    MediaLimits,
    Metrics,
    OutcomeUnknown,
    Post,
    Receipt,
    Removal,
    Removed,
    RetryLater,
    SettingSpec,
)
from channels.markup import clean_html, image_paths, site_root
from channels.text import offer_line, one_line, plain, rewrite_html_links, truncate
from publisher.model import Story

DEFAULT_API = "https://api.weixin.qq.com"
log = logging.getLogger(__name__)
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
AUTH_ERRORS = frozenset({40013, 40125, 40164, 41001, 41002, 41004, 48001, 61024})
REJECT_ERRORS = frozenset({45002, 45003, 40007, 45004, 45166, 53404})
THUMB_BYTES = 64 * 1024
BODY_IMAGE_BYTES = 1024 * 1024 - 1
CONTENT_LIMIT = 20_000
BEIJING = ZoneInfo("Asia/Shanghai")  # quota days and statistics dates
STATS_DAYS = timedelta(days=30)  # getarticletotaldetail counts this long after publishing
PUBLISH_FAILURES = {
    2: "originality check failed",
    3: "publishing failed",
    4: "rejected by review",
    5: "deleted",
    6: "banned",
}

INLINE_STYLES = {
    "p": "margin:0 0 1em;line-height:1.75;",
    "h1": "font-size:22px;margin:1em 0 .5em;",
    "h2": "font-size:20px;margin:1em 0 .5em;",
    "h3": "font-size:18px;margin:1em 0 .5em;",
    "blockquote": "margin:1em 0;padding-left:1em;border-left:3px solid #ccc;color:#555;",
    "pre": "background:#f6f6f6;padding:8px;white-space:pre-wrap;word-break:break-all;",
    "code": "font-family:Menlo,Consolas,monospace;font-size:14px;",
    "table": "border-collapse:collapse;width:100%;",
    "th": "border:1px solid #ddd;padding:4px 6px;background:#f6f6f6;",
    "td": "border:1px solid #ddd;padding:4px 6px;",
    "img": "max-width:100%;height:auto;",
    "a": "color:#576b95;",
}


def sanitize(markup: str, base_url: str = "") -> str:
    """HTML reduced to what WeChat keeps (the channels' one allow-list), with inline styles
    (no scripts, classes, or CSS files) and absolute image URLs."""
    soup = BeautifulSoup(clean_html(markup, base_url), "html.parser")
    for tag in soup.find_all(True):
        if isinstance(tag, Tag) and tag.name in INLINE_STYLES:
            tag["style"] = INLINE_STYLES[tag.name]
    return str(soup)


def fit_content(markup: str, tail: str, limit: int = CONTENT_LIMIT) -> str:
    """Whole top-level blocks while they fit, then the tail (offer and link): never cut a tag."""
    soup = BeautifulSoup(markup, "html.parser")
    kept, size = [], len(tail)
    for node in soup.contents:
        piece = str(node)
        if size + len(piece) >= limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + tail


def next_quota_day(now: datetime) -> datetime:
    local = now.astimezone(BEIJING)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
    return midnight.astimezone(now.tzinfo)


class WeChat(Channel):
    name: ClassVar[str] = "wechat"
    setup_url: ClassVar[str] = "https://mp.weixin.qq.com/"
    length: ClassVar[LengthRule] = LengthRule(limit=CONTENT_LIMIT, counting="chars")
    media: ClassVar[MediaLimits] = MediaLimits(max_images=20, max_image_bytes=BODY_IMAGE_BYTES)
    idempotency: ClassVar[Idempotency] = Idempotency.LOOKUP
    deletion: ClassVar[Deletion] = Deletion.API
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("appid", "AppID (开发者ID) from 设置与开发 → 基本配置"),
        SettingSpec("secret", "AppSecret (开发者密码) from the same page", secret=True),
        SettingSpec("author", "Author shown on articles (≤ 16 characters)", required=False),
        SettingSpec("cover", "Cover image under content/ for stories without one", required=False),
        SettingSpec(
            "api_base",
            "Where WeChat's API is reached (a test server, with allow_http)",
            required=False,
            default=DEFAULT_API,
        ),
        SettingSpec(
            "poll_interval",
            "Seconds between looks at an article being published",
            required=False,
            kind=Kind.NUMBER,
            default=3.0,
        ),
        SettingSpec(
            "poll_attempts",
            "Looks at an article being published before its outcome counts as unknown",
            required=False,
            kind=Kind.INT,
            default=20,
        ),
    )

    def __init__(self, settings: Mapping[str, Any], context: ChannelContext) -> None:
        super().__init__(settings, context)
        self._token: str | None = None

    @classmethod
    def check_story(
        cls, header: Mapping[str, str], settings: Mapping[str, Any]
    ) -> list[tuple[str, str, str]]:
        if header.get("image") or settings.get("cover"):
            return []
        return [
            (
                "channels",
                "routed to WeChat without a cover image: WeChat refuses an article without one",
                "an Image header on the story, or a cover setting for this channel",
            )
        ]

    @property
    def api(self) -> str:
        return str(self.settings["api_base"]).rstrip("/")

    # ------------------------------------------------------------------ render

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        link = links.get(story.url)
        offer = offer_line(story, links.offer_code)
        offer_html = f'<p style="{INLINE_STYLES["p"]}font-weight:bold;">{_esc(offer)}</p>'
        tail = offer_html if offer else ""
        body = sanitize(rewrite_html_links(story.html, links.urls), story.url)
        content = fit_content(body, tail)
        title = truncate(one_line(plain(story.headline(variant))), 32, len)
        digest = truncate(plain(self.override_for(story) or story.summary), 128, len)
        article: dict[str, Any] = {
            "title": title,
            "author": truncate(str(self.settings.get("author", "")), 16, len),
            "digest": digest,
            "content": content,
            "content_source_url": link,
            "need_open_comment": 0,
            "only_fans_can_comment": 0,
        }
        cover = story.images[0].path if story.images else self.settings.get("cover")
        root = site_root(story, self.settings.get("site_url"))
        body_images = [{"url": u, "path": p} for u, p in image_paths(content, root).items()]
        payload = {"article": article, "cover": cover, "body_images": body_images}
        text = "\n\n".join(p for p in (title, digest, offer, link) if p)
        paths = tuple(p for p in [cover, *(i["path"] for i in body_images)] if p)
        return Post(self.instance_name, text, payload, tuple(dict.fromkeys(paths)))

    # ------------------------------------------------------------------ token

    def _token_key(self) -> tuple[str, str]:
        return "wechat", f"token/{self.settings['appid']}"

    def access_token(self, fresh: bool = False) -> str:
        """The stable access token: memory, then the shared state store, then stable_token."""
        if self._token and not fresh:
            return self._token
        if not fresh:
            cached = self._read_token()
            if cached:
                self._token = cached
                return cached
        return self._fetch_token()

    def _read_token(self) -> str | None:
        data = self.context.state.get(*self._token_key())
        if not isinstance(data, dict) or "access_token" not in data:
            return None
        if float(data.get("expires_at", 0)) - 300 < self.context.now().timestamp():
            return None
        return str(data["access_token"])

    def _fetch_token(self) -> str:
        body = {
            "grant_type": "client_credential",
            "appid": str(self.settings["appid"]),
            "secret": self.secret("secret"),
            "force_refresh": False,
        }
        resp = http.request(self, "POST", f"{self.api}/cgi-bin/stable_token", json=body)
        data = self._result(resp, "stable_token")
        token = str(data["access_token"])
        expires = self.context.now().timestamp() + int(data.get("expires_in", 7200))
        self._write_token(token, expires)
        self._token = token
        return token

    def _write_token(self, token: str, expires_at: float) -> None:
        data = {"access_token": token, "expires_at": expires_at}
        self.context.state.put(*self._token_key(), data)

    # ------------------------------------------------------------------ calls

    def _call(self, path: str, what: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        """One API call (path under the API root) with the token; refetched once when WeChat
        calls it invalid."""
        for attempt in (0, 1):
            params = {**kw.pop("params", {}), "access_token": self.access_token(fresh=attempt > 0)}
            if body is not None:
                kw["data"] = json.dumps(body, ensure_ascii=False).encode("utf-8")
                kw["headers"] = {"Content-Type": "application/json; charset=utf-8"}
            resp = http.request(self, "POST", f"{self.api}/{path}", params=params, **kw)
            data = http.body_json(http.check(self, resp, what))
            if attempt == 0 and isinstance(data, dict) and data.get("errcode") in TOKEN_ERRORS:
                kw["params"] = {k: v for k, v in params.items() if k != "access_token"}
                continue
            return self._result(resp, what)
        return self._result(resp, what)

    def _result(self, resp: requests.Response, what: str) -> dict[str, Any]:
        data = http.body_json(http.check(self, resp, what))
        if not isinstance(data, dict):
            now = self.context.now()
            raise self.error(
                RetryLater, f"{what}: not JSON", retry_at=now + http.SERVER_ERROR_DELAY
            )
        code = int(data.get("errcode") or 0)
        if code:
            raise self._failure(code, f"{what}: errcode {code}: {data.get('errmsg', '')}")
        return data

    def _failure(self, code: int, message: str) -> Exception:
        now = self.context.now()
        if code == 45009:
            return self.error(RetryLater, message, retry_at=next_quota_day(now), hint="daily quota")
        if code == 48001:
            return self.error(
                AuthProblem,
                message,
                hint="this account type has no access to this API: publishing and statistics "
                "need a verified Official Account (认证公众号)",
            )
        if code in AUTH_ERRORS or code in TOKEN_ERRORS:
            hint = "check AppID, AppSecret and the IP whitelist (IP白名单)"
            return self.error(AuthProblem, message, hint=hint)
        if code == -1:
            return self.error(RetryLater, message, retry_at=now + http.SERVER_ERROR_DELAY)
        return self.error(ContentRejected, message)

    # ------------------------------------------------------------------ publishing

    @property
    def _scope(self) -> str:
        return f"wechat/{self.instance_name}"

    def _progress(self, key: DeliveryKey) -> dict[str, Any]:
        data = self.context.state.get(self._scope, f"progress/{key.id}")
        return dict(data) if isinstance(data, dict) else {}

    def _record(self, key: DeliveryKey, **values: Any) -> dict[str, Any]:
        data = {**self._progress(key), **values}
        self.context.state.put(self._scope, f"progress/{key.id}", data)
        return data

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        progress = self._progress(key)
        if "media_id" not in progress:
            progress = self._record(key, media_id=self._draft(post))
        if "publish_id" not in progress:
            data = self._call(
                "cgi-bin/freepublish/submit", "submit", {"media_id": progress["media_id"]}
            )
            progress = self._record(
                key,
                publish_id=str(data["publish_id"]),
                msg_data_id=data.get("msg_data_id"),
                submitted_on=self._today().isoformat(),
            )
        return self._wait_published(key, str(progress["publish_id"]))

    def _draft(self, post: Post) -> str:
        article = dict(post.payload["article"])
        cover = post.payload.get("cover")
        if not cover:
            raise self.error(
                ContentRejected, "an article needs a cover image", hint="set cover for this channel"
            )
        article["thumb_media_id"] = self._upload_cover(str(cover))
        article["content"] = self._host_images(str(article["content"]), post.payload)
        return str(self._call("cgi-bin/draft/add", "draft", {"articles": [article]})["media_id"])

    def _upload_cover(self, path: str) -> str:
        data = images.shrink_to_jpeg((self.context.content_dir / path).read_bytes(), THUMB_BYTES)
        files = {"media": ("cover.jpg", data, "image/jpeg")}
        result = self._call(
            "cgi-bin/material/add_material", "cover", files=files, params={"type": "thumb"}
        )
        return str(result["media_id"])

    def _host_images(self, content: str, payload: Mapping[str, Any]) -> str:
        """Body images uploaded to WeChat (it drops external ones), others removed."""
        hosted: dict[str, str] = {}
        for image in payload.get("body_images", []):
            path = self.context.content_dir / str(image["path"])
            if not path.is_file():
                log.warning("%s: %s is not under content/, left out", self.instance_name, path)
                continue
            up = images.prepare(path, BODY_IMAGE_BYTES)
            files = {"media": (up.filename, up.data, up.mime)}
            hosted[str(image["url"])] = str(
                self._call("cgi-bin/media/uploadimg", "image", files=files)["url"]
            )
        soup = BeautifulSoup(content, "html.parser")
        for img in soup.find_all("img"):
            if isinstance(img, Tag):
                src = str(img.get("src", ""))
                if src in hosted:
                    img["src"] = hosted[src]
                else:
                    img.decompose()
        return str(soup)

    def _status(self, publish_id: str) -> dict[str, Any]:
        return self._call("cgi-bin/freepublish/get", "publish status", {"publish_id": publish_id})

    def _wait_published(self, key: DeliveryKey, publish_id: str) -> Receipt:
        interval = float(self.settings["poll_interval"])
        for _ in range(int(self.settings["poll_attempts"])):
            data = self._status(publish_id)
            receipt = self._receipt(key, publish_id, data)
            if receipt is not None:
                return receipt
            time.sleep(interval)
        raise self.error(
            OutcomeUnknown, f"publish {publish_id} still in progress; lookup will find it"
        )

    def _receipt(
        self, key: DeliveryKey, publish_id: str, data: Mapping[str, Any]
    ) -> Receipt | None:
        status = int(data.get("publish_status", 1))
        if status in PUBLISH_FAILURES:
            raise self.error(
                ContentRejected, f"publish {publish_id}: {PUBLISH_FAILURES[status]} ({status})"
            )
        if status != 0:
            return None
        items = (data.get("article_detail") or {}).get("item") or [{}]
        url = items[0].get("article_url")
        progress = self._progress(key)
        extra = {"publish_id": publish_id, **progress, "article_id": data.get("article_id")}
        remote_id = str(data.get("article_id") or publish_id)
        return Receipt(
            remote_id=remote_id, url=url, extra={**extra, **self._statistics(progress, items[0])}
        )

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        publish_id = self._progress(key).get("publish_id")
        if not publish_id:
            return None
        return self._receipt(key, str(publish_id), self._status(str(publish_id)))

    # ------------------------------------------------------------------ taking back

    def delete(self, receipt: Receipt) -> Removal:
        """``freepublish/delete`` with ``index`` 0 removes every article of the publication
        (the article link then says the publisher deleted it). An article already sent to
        followers as a mass message (群发) stays in their chats: that is not how we publish."""
        article_id = _article_id(receipt)
        if not article_id:
            return Removal(
                Removed.BY_HAND, "WeChat gave no article_id: delete it under 发表记录 by hand"
            )
        try:
            self._call(
                "cgi-bin/freepublish/delete", "delete", {"article_id": article_id, "index": 0}
            )
        except ContentRejected:
            if self.exists(receipt) is False:
                return Removal(Removed.GONE, "the article is deleted already")
            raise
        return Removal(Removed.REMOVED)

    def exists(self, receipt: Receipt) -> bool | None:
        """``freepublish/getarticle`` lists the publication's articles with ``is_deleted``."""
        article_id = _article_id(receipt)
        if not article_id:
            return None
        try:
            data = self._call(
                "cgi-bin/freepublish/getarticle", "read article", {"article_id": article_id}
            )
        except ContentRejected:  # an article_id WeChat no longer knows
            return False
        items = data.get("news_item") or []
        return any(not item.get("is_deleted") for item in items if isinstance(item, Mapping))

    # ------------------------------------------------------------------ metrics

    def _today(self) -> date:
        return self.context.now().astimezone(BEIJING).date()

    def _statistics(self, progress: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
        """What metrics() needs, kept in the receipt: the statistics msgid and the Beijing days
        the article may have gone out on (from its submission to when it was seen published)."""
        msgid = statistics_msgid(progress.get("msg_data_id"), item)
        if msgid is None:
            return {}
        today = self._today().isoformat()
        first = str(progress.get("submitted_on") or today)
        return {"msgid": msgid, "first_day": first, "last_day": today}

    def metrics(self, receipt: Receipt) -> Metrics | None:
        """The article's totals from getarticletotaldetail, or None when there is nothing new.

        WeChat has figures up to yesterday (Beijing time), refreshed once a day, for the 30 days
        after publishing: an article is asked at most once a day, and no more once final.
        """
        article = receipt.extra
        if not article.get("msgid"):
            return None  # published before its statistics id was recorded, or elsewhere
        fetched = self.context.state.get(self._scope, f"fetched/{receipt.remote_id}")
        yesterday = self._today() - timedelta(days=1)
        first = date.fromisoformat(article["first_day"])
        last = date.fromisoformat(article["last_day"])
        if str(fetched or "") >= str(min(yesterday, last + STATS_DAYS)):
            return None
        for day in _days(first, min(last, yesterday)):
            when = {"begin_date": str(day), "end_date": str(day)}
            data = self._call("datacube/getarticletotaldetail", "article statistics", when)
            row = latest_statistics(data, str(article["msgid"]))
            if row is not None:
                if not data.get("is_delay"):  # final for yesterday: no need to ask again today
                    self.context.state.put(
                        self._scope, f"fetched/{receipt.remote_id}", str(yesterday)
                    )
                return figures(row)
        return None


def _article_id(receipt: Receipt) -> str | None:
    found = receipt.extra.get("article_id")
    return str(found) if found else None


def statistics_msgid(msg_data_id: Any, item: Mapping[str, Any]) -> str | None:
    """``<msg_data_id>_<index>``: freepublish/submit's msg_data_id and the article's position,
    or else the ``mid`` and ``idx`` of a long article URL."""
    if msg_data_id:
        return f"{msg_data_id}_{item.get('idx') or 1}"
    query = parse_qs(urlsplit(str(item.get("article_url") or "")).query)
    if "mid" not in query:
        return None
    return f"{query['mid'][0]}_{query.get('idx', ['1'])[0]}"


def latest_statistics(data: Mapping[str, Any], msgid: str) -> Mapping[str, Any] | None:
    """The article's detail_list row with the latest stat_date: each row already holds the totals
    from the publish day to its stat_date, so rows are never added up."""
    for item in data.get("list") or []:
        if item.get("msgid") == msgid:
            rows = item.get("detail_list") or []
            return max(rows, key=lambda row: str(row.get("stat_date", ""))) if rows else None
    return None


def figures(row: Mapping[str, Any]) -> Metrics:
    """Readers (read_user), thumb and heart likes (like_user + zaikan_user, 在看), sharers
    (share_user) and comments (comment_count); WeChat reports no link clicks here."""
    return Metrics(
        views=_count(row, "read_user"),
        likes=_count(row, "like_user", "zaikan_user"),
        reposts=_count(row, "share_user"),
        replies=_count(row, "comment_count"),
    )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _count(row: Mapping[str, Any], *fields: str) -> int | None:
    values = [int(row[name]) for name in fields if row.get(name) is not None]
    return sum(values) if values else None


def _esc(text: str) -> str:
    from html import escape

    return escape(text)
