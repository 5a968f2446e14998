"""The contract every channel adapter follows, and what they share.

An adapter is one module with one :class:`Channel` subclass. It declares its limits and settings
as class attributes, renders a story into a :class:`Post` without any I/O, and publishes through a
thin HTTP client that maps every failure onto the :class:`ChannelError` tree of
:mod:`channels.contract` (re-exported here, where adapters have always found it).

``channels`` depends on no part of the engine but the manifest's model (:mod:`publisher.model`):
what an adapter needs from the engine comes in its :class:`ChannelContext`. The import-linter
contracts in ``pyproject.toml`` hold both rules. ChannelError is a StoryloopError (the project's
errors have one root, defined in the contract module too).
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Any, ClassVar

from channels.contract import (
    JSON,
    AuthProblem,
    ChannelContext,
    ChannelError,
    ChannelNotFound,
    ChannelSettings,
    ContentRejected,
    Deletion,
    DeliveryKey,
    Idempotency,
    Kind,
    LengthRule,
    Links,
    MediaLimits,
    MemoryState,
    Metrics,
    OutcomeUnknown,
    Post,
    RateLimited,
    Receipt,
    Removal,
    Removed,
    RetryLater,
    Secret,
    SettingProblem,
    SettingSpec,
    StateStore,
    StoryloopError,
    parse_settings,
)
from publisher.model import Story

__all__ = [
    "COMMON_SETTINGS",
    "DEFAULT_TIMEOUT",
    "ENGINE_GIVEN",
    "ENTRY_POINT_GROUP",
    "JSON",
    "AuthProblem",
    "Channel",
    "ChannelContext",
    "ChannelError",
    "ChannelNotFound",
    "ChannelSettings",
    "ContentRejected",
    "Deletion",
    "DeliveryKey",
    "Idempotency",
    "Kind",
    "LengthRule",
    "Links",
    "MediaLimits",
    "MemoryState",
    "Metrics",
    "OutcomeUnknown",
    "Post",
    "RateLimited",
    "Receipt",
    "Removal",
    "Removed",
    "RetryLater",
    "Secret",
    "SettingProblem",
    "SettingSpec",
    "StateStore",
    "StoryloopError",
    "channel_class",
    "insecure_endpoints",
    "installed",
    "load_class",
    "mask_secrets",
    "parse_settings",
]

ENTRY_POINT_GROUP = "storyloop.channels"
DEFAULT_TIMEOUT = (5.0, 30.0)  # seconds to connect, to read: requests' timeout
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- contract

# Settings every channel reads (the engine's, around the network call), declared once here.
COMMON_SETTINGS = (
    SettingSpec(
        "resend_on_unknown",
        "Send again when a post's outcome is unknown (only where a double post does no harm)",
        required=False,
        kind=Kind.BOOL,
        default=False,
    ),
    SettingSpec(
        "idempotency_key_hours",
        "How long the network honours an idempotency key, when not the adapter's own",
        required=False,
        kind=Kind.NUMBER,
    ),
    SettingSpec(
        "allow_http",
        "Reach the network over plain http:// (a test server on this machine only)",
        required=False,
        kind=Kind.BOOL,
        default=False,
    ),
    SettingSpec(
        "timeout",
        "Seconds to wait for the network: one number, or (connect, read)",
        required=False,
        kind=Kind.SECONDS,
        default=DEFAULT_TIMEOUT,
    ),
    SettingSpec(
        "window",
        'Hours posts may go out, in the story\'s time zone, e.g. "08:00-22:00"',
        required=False,
    ),
    SettingSpec("daily_cap", "At most this many posts a day", required=False, kind=Kind.INT),
    SettingSpec(
        "rate",
        "A token bucket for posts: per_minute, with bursts of burst",
        required=False,
        kind=Kind.RATE,
    ),
    SettingSpec(
        "variants",
        "A story's headline variants: each post one of them (split), or one post each (all)",
        required=False,
        kind=Kind.CHOICE,
        default="split",
        choices=("split", "all"),
    ),
    SettingSpec(
        "variant_gap_hours",
        'Hours between the posts of one story\'s variants (with "variants": "all")',
        required=False,
        kind=Kind.NUMBER,
        default=24.0,
    ),
    SettingSpec(
        "lang",
        "Post the story's translation in this language when it has one, e.g. en",
        required=False,
    ),
)

# What the engine adds to every channel's settings (never written in the settings file but
# ``type``): the name it is configured as, its class, and the site's addresses.
ENGINE_GIVEN = ("name", "type", "tracking_base_url", "site_url", "site_root")


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
    # utm_medium of the tracked links in this channel's posts
    utm_medium: ClassVar[str] = "social"
    # How a post is taken back when consent ends, and for API_WITHIN until what age.
    deletion: ClassVar[Deletion] = Deletion.NONE
    delete_within: ClassVar[timedelta | None] = None

    def __init__(self, settings: Mapping[str, Any], context: ChannelContext) -> None:
        if not isinstance(settings, ChannelSettings):
            settings, problems = self.read_settings(settings)
            if problems:
                raise problems[0]
        self.settings: ChannelSettings = settings
        self.context = context
        self.instance_name = str(settings.get("name", self.name))

    @classmethod
    def declared_settings(cls) -> tuple[SettingSpec, ...]:
        """Every setting this channel reads: its own, then the ones every channel has."""
        own = {s.name for s in cls.settings_spec}
        return (*cls.settings_spec, *(s for s in COMMON_SETTINGS if s.name not in own))

    @classmethod
    def read_settings(cls, raw: Mapping[str, Any]) -> tuple[ChannelSettings, list[SettingProblem]]:
        """The settings as written, read by the declarations: typed, defaults filled in."""
        name = str(raw.get("name") or cls.name)
        return parse_settings(name, cls.declared_settings(), raw)

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
    def render(self, story: Story, variant: str | None, links: Links) -> Post:
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


def mask_secrets(text: str, settings: Mapping[str, Any]) -> str:
    """Replace every secret value found in ``settings`` by ``***``."""
    for value in settings.values():
        if isinstance(value, Secret) and value.reveal():
            text = text.replace(value.reveal(), "***")
    return text
