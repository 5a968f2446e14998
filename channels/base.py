"""The contract every channel adapter follows, and what they share.

An adapter is one module with one :class:`Channel` subclass. It declares its limits and settings
as class attributes, renders a story into a :class:`Post` without any I/O, and publishes through a
thin HTTP client that maps every failure onto the :class:`ChannelError` tree below.

ChannelError                     (carries channel, story source, hint; never a secret)
 │                                a StoryloopError: the project's errors have one root
 ├── RetryLater(retry_at)         transient: try again at or after ``retry_at``
 │    └── RateLimited(until)      the network said to slow down, and until when
 ├── AuthProblem                  credentials missing, revoked or expired: pause the channel
 ├── ContentRejected              permanent: the network refused this post, with its message
 └── OutcomeUnknown               the request may have reached the network; resolve before resend
"""

from __future__ import annotations

import enum
import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import requests

from publisher.errors import SettingsError, StoryloopError
from publisher.model import Story
from publisher.settings import Secret, Settings, is_secret_ref

ENTRY_POINT_GROUP = "storyloop.channels"
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- errors


class ChannelError(StoryloopError):
    """A channel failed. Messages must never contain a secret."""

    def __init__(
        self,
        message: str,
        *,
        channel: str = "",
        source: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.message = message
        self.channel = channel
        self.source = source
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        chan = f"{self.channel}: " if self.channel else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{chan}{self.message}{hint}"


class RetryLater(ChannelError):
    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_at = retry_at


class RateLimited(RetryLater):
    def __init__(self, message: str, *, until: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, retry_at=until, **kw)
        self.until = until


class AuthProblem(ChannelError):
    pass


class ContentRejected(ChannelError):
    pass


class OutcomeUnknown(ChannelError):
    pass


class ChannelNotFound(StoryloopError, LookupError):
    def __init__(self, name: str, installed: list[str]) -> None:
        super().__init__(f'No channel named "{name}" (installed: {", ".join(sorted(installed))})')
        self.name = name


# --------------------------------------------------------------------------- values


class Idempotency(enum.Enum):
    KEY = "idempotency key sent with the request"  # Mastodon, webhook
    RECORD_KEY = "record key chosen by us, checked before create"  # Bluesky
    LOOKUP = "earlier post found by lookup"  # WeChat batchget, email sent records
    NONE = "none: an unanswered request is an unknown outcome"  # Telegram, X, Weibo


@dataclass(frozen=True)
class LengthRule:
    limit: int
    counting: str  # "graphemes" | "weighted" | "hanzi" | "chars" | "none"
    url_weight: int | None = None  # every URL counts this much, whatever its length
    max_bytes: int | None = None


@dataclass(frozen=True)
class MediaLimits:
    max_images: int = 0
    max_image_bytes: int = 0
    formats: tuple[str, ...] = ("image/jpeg", "image/png")


@dataclass(frozen=True)
class SettingSpec:
    name: str
    help: str
    secret: bool = False
    required: bool = True


@dataclass(frozen=True)
class DeliveryKey:
    """The identity of one delivery, stable across retries and processes."""

    id: str  # e.g. "2c9f…" derived from story slug × channel × variant
    planned_at: datetime


@dataclass(frozen=True)
class Links:
    """Tracked links for one delivery: original URL -> tracked URL, plus the offer code."""

    urls: Mapping[str, str] = field(default_factory=dict)
    offer_code: str | None = None

    def get(self, url: str) -> str:
        return self.urls.get(url, url)


@dataclass(frozen=True)
class Post:
    """What would be sent: the network's own payload, plus a readable text for people."""

    channel: str
    text: str
    payload: Mapping[str, Any]
    images: tuple[str, ...] = ()  # content paths of images to upload


@dataclass(frozen=True)
class Receipt:
    remote_id: str
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Metrics:
    likes: int | None = None
    reposts: int | None = None
    replies: int | None = None
    views: int | None = None
    clicks: int | None = None


class Deletion(enum.Enum):
    """Whether a post already made can be taken back (a customer withdrew their consent)."""

    API = "deleted through the network's API"
    API_WITHIN = "deleted through the API while young enough (``delete_within``)"
    NONE = "cannot be recalled: delivered for good, or removed by a person"


class Removed(enum.Enum):
    REMOVED = "removed"
    GONE = "not found: removed already"  # a 404 on delete counts as removed
    BY_HAND = "remove by hand"


@dataclass(frozen=True)
class Removal:
    """What :meth:`Channel.delete` did: the outcome, and for a person the network's words."""

    outcome: Removed
    detail: str = ""


@dataclass
class ChannelContext:
    """What an adapter may touch besides the network: a session, a folder, a clock."""

    var_dir: Path
    content_dir: Path
    session: requests.Session = field(default_factory=requests.Session)
    now: Callable[[], datetime] = field(default_factory=lambda: partial(datetime.now, UTC))
    optouts: Callable[[], set[str]] = field(default_factory=lambda: set)


# --------------------------------------------------------------------------- contract


class Channel(ABC):
    """One network. Subclasses set the class attributes and implement the four methods."""

    name: ClassVar[str]
    setup_url: ClassVar[str]
    length: ClassVar[LengthRule]
    media: ClassVar[MediaLimits] = MediaLimits()
    idempotency: ClassVar[Idempotency]
    # How long the network honours an idempotency key (Mastodon: one hour); None: for good.
    # The engine never relies on a key older than this: it looks the post up, or holds it.
    key_kept: ClassVar[timedelta | None] = None
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = ()
    # How a post is taken back when consent ends, and for API_WITHIN until what age.
    deletion: ClassVar[Deletion] = Deletion.NONE
    delete_within: ClassVar[timedelta | None] = None

    def __init__(self, settings: Mapping[str, Any], context: ChannelContext) -> None:
        self.settings = settings
        self.context = context
        self.instance_name = str(settings.get("name", self.name))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance_name!r}>"

    @classmethod
    def missing_settings(cls, settings: Mapping[str, Any]) -> list[str]:
        return [s.name for s in cls.settings_spec if s.required and not settings.get(s.name)]

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any], tracking_base_url: str) -> list[str]:
        """Problems with these settings that would make every post fail (for `storyloop check`)."""
        return []

    @classmethod
    def check_story(
        cls, header: Mapping[str, str], settings: Mapping[str, Any]
    ) -> list[tuple[str, str, str]]:
        """Problems in a story routed to this channel that would fail or spoil its post, as
        (field, what is wrong, what was expected), for `storyloop check`. ``header`` is the
        story file's metadata with lower-case field names."""
        return []

    def protected_spans(self, text: str) -> list[tuple[int, int]]:
        """Spans of a post's body that truncation must keep whole or drop whole (besides URLs)."""
        return []

    def override_for(self, story: Story) -> str | None:
        """The editor's own text for this channel (by configured name, then by network)."""
        return story.overrides.get(self.instance_name) or story.overrides.get(self.name)

    def short_text(
        self, story: Story, variant: str | None, links: Links, limit: int | None = None
    ) -> str:
        """Headline and summary (or override), offer with code, tracked link: cut to the limit."""
        from channels.text import rule_counter, standard_text

        rule = self.length
        count = rule_counter(rule.counting, rule.url_weight, rule.limit, rule.max_bytes)
        return standard_text(
            story,
            variant,
            links.urls,
            links.offer_code,
            limit or rule.limit or None,
            count,
            self.override_for(story),
            self.protected_spans,
        )

    def secret(self, name: str) -> str:
        """A secret setting's value, revealed only to build a request; "" when unset."""
        value = self.settings.get(name)
        if isinstance(value, Secret):
            return value.reveal()
        return "" if value is None else str(value)

    def error(self, cls: type[ChannelError], message: str, **kw: Any) -> ChannelError:
        """A ChannelError naming this channel, with every secret setting masked out of the text."""
        return cls(mask_secrets(message, self.settings), channel=self.instance_name, **kw)

    @property
    def resend_on_unknown(self) -> bool:
        """Whether an unknown outcome may simply be sent again (channel setting)."""
        return bool(self.settings.get("resend_on_unknown", False))

    @property
    def key_lifetime(self) -> timedelta | None:
        """``key_kept``, unless the channel's ``idempotency_key_hours`` setting says otherwise."""
        hours = self.settings.get("idempotency_key_hours")
        return self.key_kept if hours is None else timedelta(hours=float(hours))

    @abstractmethod
    def render(
        self, story: Story, variant: str | None, links: Links, settings: Mapping[str, Any]
    ) -> Post:
        """Pure: the post for this story, variant and tracked links. No I/O."""

    @abstractmethod
    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        """Send the post. Raise a ChannelError subclass on any failure."""

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        """Find a post made earlier for this key, where the network allows it."""
        return None

    def metrics(self, receipt: Receipt) -> Metrics | None:
        """Engagement the network exposes for a post, or None."""
        return None

    def delete(self, receipt: Receipt) -> Removal:
        """Take the post back (delete it, or edit it where deleting is impossible). Raise a
        ChannelError subclass on failure, as publish does; a post not found counts as removed."""
        return Removal(Removed.BY_HAND, f"{self.name}: a post cannot be recalled through its API")

    def exists(self, receipt: Receipt) -> bool | None:
        """Whether the post is still there, to settle a delete whose answer was lost; None when
        the network cannot tell (then the delete is sent again: it answers "not found")."""
        return None


# --------------------------------------------------------------------------- registry


def installed() -> dict[str, type[Channel]]:
    """Every channel class registered under the ``storyloop.channels`` entry points."""
    found: dict[str, type[Channel]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.load()
    return found


def channel_class(name: str) -> type[Channel]:
    """The class registered as ``name``; only that entry point is imported."""
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        raise ChannelNotFound(name, [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)])
    cls: type[Channel] = next(iter(found)).load()
    return cls


def load_class(type_name: str) -> type[Channel]:
    """A channel class by entry-point name, or by import path ``module:Class``."""
    if ":" not in type_name:
        return channel_class(type_name)
    module_name, _, attr = type_name.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ChannelNotFound(type_name, list(installed())) from exc
    if not (isinstance(found, type) and issubclass(found, Channel)):
        raise ChannelNotFound(type_name, list(installed()))
    return found


def engine_settings(name: str, settings: Settings) -> dict[str, Any]:
    """One configured channel's settings (secrets resolved) plus what the engine gives adapters."""
    conf: dict[str, Any] = (
        settings.channel_settings(name) if name in settings.channels else {"type": name}
    )
    conf["name"] = name
    conf.setdefault("tracking_base_url", settings.tracking_base_url)
    conf.setdefault("site_url", settings.site_url)
    conf.setdefault("site_root", str(settings.root))
    if str(conf.get("type", name)).split(":")[-1].lower() == "email":
        conf.setdefault("unsubscribe_key", signing_key(settings))
    return conf


def signing_key(settings: Settings) -> Secret | None:
    from publisher.tracking.optout import signing_key as tracker_key

    return tracker_key(settings)


_announced: set[tuple[str, str]] = set()


def missing_for(
    name: str, settings: Settings, cls: type[Channel], conf: Mapping[str, Any]
) -> list[str]:
    """Required settings that are absent, and secrets the settings name but the environment
    lacks (a password named in the settings is meant to be used, even where it is optional)."""
    raw = settings.channels.get(name, {})
    unset = [key for key, value in raw.items() if is_secret_ref(value) and conf.get(key) is None]
    return list(dict.fromkeys([*cls.missing_settings(conf), *unset]))


def open_channel(name: str, settings: Settings, context: ChannelContext) -> Channel:
    """The configured channel ``name``, or its outbox when a required setting is missing."""
    conf = engine_settings(name, settings)
    cls = load_class(str(conf.get("type") or name))
    channel = cls(conf, context)
    missing = missing_for(name, settings, cls, conf)
    if not missing:
        insecure = insecure_endpoints(conf)
        if insecure:
            raise SettingsError(f'channel "{name}": {insecure[0]}', hint=ALLOW_HTTP_HINT)
        return channel
    from channels.outbox import Outbox

    folder = context.var_dir / "outbox" / name
    if (name, str(folder)) not in _announced:
        _announced.add((name, str(folder)))
        log.warning(
            'channel "%s": no credentials (missing: %s) – writing to %s/',
            name,
            ", ".join(missing),
            folder,
        )
    return Outbox(conf, context, inner=channel)


ENDPOINT_SETTINGS = ("instance", "service", "api_base")  # where a network's API is reached
ALLOW_HTTP_HINT = 'use https://, or set "allow_http": True on a development machine only'


def insecure_endpoints(conf: Mapping[str, Any]) -> list[str]:
    """Network addresses that are not https:// (tokens would cross the network in clear), unless
    the channel's settings say ``"allow_http": True`` (a test server on this machine)."""
    if conf.get("allow_http") is True:
        return []
    found = []
    for key in ENDPOINT_SETTINGS:
        value = conf.get(key)
        if value and not str(value).lower().startswith("https://"):
            found.append(f"{key} {str(value)[:80]!r} is not an https:// address")
    return found


def announce_outboxes(settings: Settings, var_dir: Path) -> list[str]:
    """The configured channels that will write to their outbox for want of credentials, each
    then not warned about again when opened: a caller says it once, for all of them."""
    names = []
    for name in settings.channels:
        conf = engine_settings(name, settings)
        try:
            cls = load_class(str(conf.get("type") or name))
        except (ChannelNotFound, ImportError):
            continue  # reported when the channel is opened, and by `storyloop check`
        if missing_for(name, settings, cls, conf):
            names.append(name)
            _announced.add((name, str(var_dir / "outbox" / name)))
    return names


def mask_secrets(text: str, settings: Mapping[str, Any]) -> str:
    """Replace every secret value found in ``settings`` by ``***``."""
    for value in settings.values():
        if isinstance(value, Secret) and value.reveal():
            text = text.replace(value.reveal(), "***")
    return text
