"""The types the engine and the channel adapters share, and nothing else.

This module imports no other part of Storyloop (an import-linter contract holds it to that), so
both sides can depend on it: the engine builds :class:`ChannelContext` and reads
:class:`Receipt`; an adapter raises the :class:`ChannelError` tree and returns
:class:`Post`, :class:`Receipt` and :class:`Metrics`. The Channel class itself, which also reads
the manifest's model, is in :mod:`channels.base`.

StoryloopError                      root of every error the CLI reports as one line; it lives
 │                                  here so channels share it without importing the engine,
 │                                  and :mod:`publisher.errors` re-exports the very same class
 ├── ChannelNotFound                (also a LookupError) no installed channel has that name
 └── ChannelError                   carries channel, story source, hint; never a secret
      ├── RetryLater(retry_at)      transient: try again at or after ``retry_at``
      │    └── RateLimited(until)   the network said to slow down, and until when
      ├── AuthProblem               credentials missing, revoked or expired: pause the channel
      ├── ContentRejected           permanent: the network refused this post, with its message
      └── OutcomeUnknown            the request may have reached the network; resolve first
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # imported when a context is made: it costs every process that
    import requests  # imports the errors (the site build among them) about 0.15 s

# --------------------------------------------------------------------------- secrets


class Secret:
    """A secret value that refuses to show itself in reprs, logs and tracebacks."""

    __slots__ = ("_name", "_value")

    def __init__(self, value: str, name: str = "secret") -> None:
        self._value = value
        self._name = name

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self._name!r}, '***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


# --------------------------------------------------------------------------- errors


class StoryloopError(Exception):
    """Base of every error the CLI reports as one clean line."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (hint: {self.hint})" if self.hint else text


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


class Kind(enum.Enum):
    """What a channel setting holds; the value is what ``check`` says it expected."""

    TEXT = "text"
    INT = "a whole number"
    NUMBER = "a number"
    BOOL = "True or False"
    CHOICE = "one of"
    SECONDS = "seconds, or (connect, read) seconds"
    RATE = 'a dict {"per_minute": a number, "burst": a whole number}'


@dataclass(frozen=True)
class SettingSpec:
    """One setting a channel reads, declared once: what it holds, its default (None: none, or
    one the adapter works out), the values allowed, whether it is a secret, a line of help."""

    name: str
    help: str
    secret: bool = False
    required: bool = True
    kind: Kind = Kind.TEXT
    default: Any = None
    choices: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        if self.kind is Kind.CHOICE:
            return f"one of {', '.join(self.choices)}"
        return str(self.kind.value)

    def parse(self, value: Any) -> Any:
        """The setting's value as the adapter reads it; ValueError when it is not one."""
        if isinstance(value, Secret) or value is None:
            return value  # a secret's text is not looked at here, so no message shows it
        if self.secret:
            if not isinstance(value, str):
                raise ValueError(self.expected)
            return Secret(value, self.name)
        kind, number = self.kind, isinstance(value, int | float) and not isinstance(value, bool)
        if kind is Kind.BOOL and isinstance(value, bool):
            return value
        if kind is Kind.INT and ((isinstance(value, int) and number) or _digits(value)):
            return int(value)
        if kind is Kind.NUMBER and (number or _decimal(value)):
            return float(value)
        if kind is Kind.CHOICE and value in self.choices:
            return value
        if kind is Kind.TEXT and (isinstance(value, str) or (isinstance(value, int) and number)):
            return value
        if kind is Kind.SECONDS:
            return _seconds(value)
        if kind is Kind.RATE:
            return _rate(value)
        raise ValueError(self.expected)


def _seconds(value: object) -> float | tuple[float, float]:
    """A timeout as requests takes it: one number, or (connect, read)."""
    if isinstance(value, list | tuple) and len(value) == 2:
        connect, read = (_seconds(v) for v in value)
        if isinstance(connect, float) and isinstance(read, float):
            return (connect, read)
    elif (
        isinstance(value, int | float | str)
        and not isinstance(value, bool)
        and (not isinstance(value, str) or _decimal(value))
        and float(value) > 0
    ):
        return float(value)
    raise ValueError(Kind.SECONDS.value)


def _rate(value: object) -> dict[str, float | int]:
    """A token bucket: ``per_minute`` posts (default 60) with bursts of ``burst`` (default 1)."""
    if not isinstance(value, Mapping) or not set(value) <= {"per_minute", "burst"}:
        raise ValueError(Kind.RATE.value)
    per_minute, burst = value.get("per_minute", 60), value.get("burst", 1)
    if isinstance(per_minute, bool) or not isinstance(per_minute, int | float) or per_minute <= 0:
        raise ValueError(Kind.RATE.value)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(Kind.RATE.value)
    return {"per_minute": float(per_minute), "burst": burst}


def _digits(value: object) -> bool:
    return isinstance(value, str) and value.strip().isdigit()


def _decimal(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


class SettingProblem(StoryloopError):
    """A channel setting that is not what its declaration allows (never shows a secret)."""

    def __init__(self, channel: str, spec: SettingSpec, value: Any) -> None:
        shown = "(secret, not shown)" if spec.secret else repr(value)
        super().__init__(f"{channel}.{spec.name}: {shown}")
        self.channel = channel
        self.spec = spec
        self.shown = shown


class ChannelSettings(Mapping[str, Any]):
    """One channel's settings, parsed once and frozen: each declared setting typed, with its
    default where it has one; the rest (the engine's addresses, the type) as written."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:  # a Secret shows as '***' in its own repr
        return f"ChannelSettings({self._values!r})"


def parse_settings(
    channel: str, specs: Iterable[SettingSpec], raw: Mapping[str, Any]
) -> tuple[ChannelSettings, list[SettingProblem]]:
    """``raw`` read by ``specs``: the settings an adapter reads, and every value refused. A
    value absent, None or "" takes the declared default."""
    values = dict(raw)
    problems = []
    for spec in specs:
        value = raw.get(spec.name)
        if value is None or value == "":
            if spec.default is not None:
                values[spec.name] = spec.default
            continue
        try:
            values[spec.name] = spec.parse(value)
        except ValueError:
            problems.append(SettingProblem(channel, spec, value))
    return ChannelSettings(values), problems


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


# --------------------------------------------------------------------------- the context

JSON = Any  # what a state store keeps: a value json.dumps accepts


class StateStore(Protocol):
    """Where an adapter keeps what it must remember between attempts, processes and machines
    (ids a network handed out, a cached token, records per recipient): the engine's database.

    ``scope`` is the adapter's own name space (its configured name, say), ``key`` one entry."""

    def get(self, scope: str, key: str) -> JSON | None: ...

    def put(self, scope: str, key: str, value: JSON) -> None: ...

    def items(self, scope: str) -> dict[str, JSON]: ...


class MemoryState:
    """A state store for one process: what a context gets when the engine hands it none (tests,
    ``--dry-run``). Values are copied in and out as the database would."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], JSON] = {}
        self._lock = threading.Lock()

    def get(self, scope: str, key: str) -> JSON | None:
        with self._lock:
            return _copy(self._data.get((scope, key)))

    def put(self, scope: str, key: str, value: JSON) -> None:
        with self._lock:
            self._data[(scope, key)] = _copy(value)

    def items(self, scope: str) -> dict[str, JSON]:
        with self._lock:
            return {k: _copy(v) for (s, k), v in self._data.items() if s == scope}


def _copy(value: JSON) -> JSON:
    if isinstance(value, Mapping):
        return {str(k): _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _new_session() -> requests.Session:
    import requests

    return requests.Session()


@dataclass
class ChannelContext:
    """What an adapter may touch besides the network, all handed over by the engine.

    ``var_dir`` holds the outbox's folders (what would have been posted, for people to read);
    anything an adapter must remember goes to ``state``. ``unsubscribe_url`` makes the signed
    one-click unsubscribe link for an address; None when the engine has no signing key, and
    then an adapter that needs one refuses to send."""

    var_dir: Path
    content_dir: Path
    session: requests.Session = field(default_factory=lambda: _new_session())
    now: Callable[[], datetime] = field(default_factory=lambda: partial(datetime.now, UTC))
    optouts: Callable[[], set[str]] = field(default_factory=lambda: set)
    state: StateStore = field(default_factory=MemoryState)
    unsubscribe_url: Callable[[str], str] | None = None
