"""Settings in one place: ``pelicanconf.py`` holds the site's settings and, under ``STORYLOOP``,
the engine's, read once into frozen typed objects (:class:`EngineSettings` and the sections it
holds) whose field defaults are the engine's defaults. A value of the wrong kind is refused when
the file is read, with one :class:`SettingsError` naming the file, the line, the key path and what
was expected. Secrets are given by reference (``{"env": "NAME"}``) and resolved when the file is
read into :class:`Secret`, which never prints its value.

Each configured channel's settings are read here too, by the declarations of its class
(:mod:`channels.contract`), so ``storyloop check`` reports a bad one with its line and an adapter
is handed typed values: see :class:`ConfiguredChannel`.
"""

from __future__ import annotations

import os
import re
import runpy
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from channels.contract import Secret as Secret  # where adapters find it too
from channels.contract import SettingProblem
from publisher.errors import SettingsError

if TYPE_CHECKING:
    from channels.base import Channel

DEFAULT_CONFIG = "pelicanconf.py"
T = TypeVar("T")


def is_secret_ref(value: object) -> bool:
    return isinstance(value, Mapping) and set(value) == {"env"}


def resolve_secrets(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Replace every ``{"env": NAME}`` by a :class:`Secret`, or by None when NAME is unset."""
    env = os.environ if environ is None else environ
    if is_secret_ref(value):
        name = str(value["env"])
        raw = env.get(name)
        return Secret(raw, name) if raw else None
    if isinstance(value, Mapping):
        return {k: resolve_secrets(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, env) for v in value]
    return value


def frozen(value: Any) -> Any:
    """A read-only copy: dicts as mapping proxies, lists as tuples (a section the engine hands
    on whole, such as an SMTP server's settings)."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return value


# --------------------------------------------------------------------------- where a key is


def line_of(text: tuple[str, ...], path: tuple[str, ...]) -> int:
    """The line of the key ``path`` in the settings file's ``text``: each key of the path looked
    for from the line of the one before; the last line found when the file does not say the
    rest (1 when it says none of it: a default, or settings built in code)."""
    found, start = 0, 0
    for key in path:
        quoted = (f'"{key}"', f"'{key}'")
        hit = next((i for i in range(start, len(text)) if any(q in text[i] for q in quoted)), None)
        if hit is None:
            break
        found, start = hit + 1, hit
    return found or 1


@dataclass(frozen=True)
class Where:
    """The settings file being read, for messages that name file, line and key path (the file
    is read again only to find a line, when there is something to say)."""

    source: Path

    @classmethod
    def of(cls, source: Path) -> Where:
        return cls(source)

    def line(self, *path: str) -> int:
        try:
            text = tuple(self.source.read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError):
            return 1
        return line_of(text, path)

    def error(
        self, path: tuple[str, ...], value: object, expected: str, *, secret: bool = False
    ) -> SettingsError:
        shown = "(secret, not shown)" if secret else _shown(value)
        where = f"{self.source.name}:{self.line(*path)}"
        return SettingsError(f"{where}: STORYLOOP.{'.'.join(path)}: {shown} (expected {expected})")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- the sections


@dataclass(frozen=True)
class TrackingSettings:
    """``STORYLOOP["tracking"]``: the tracker, its APIs and its links."""

    base_url: str = "http://127.0.0.1:8000"  # tracked links are <base_url>/go/<code>
    host: str = "127.0.0.1"  # where `storyloop serve` listens
    port: int = 8000
    # secrets: each read from its variable unless the file names another
    api_token: Secret | None = field(default=None, metadata={"env": "STORYLOOP_API_TOKEN"})
    signing_key: Secret | None = field(default=None, metadata={"env": "STORYLOOP_SIGNING_KEY"})
    shopify_secret: Secret | None = field(
        default=None, metadata={"env": "STORYLOOP_SHOPIFY_SECRET"}
    )
    currency: str | None = None  # the online shop's, for a sale reported without one
    offer_prefix: str = "SL"  # offer codes start with it
    journal_fsync: bool = False  # fsync the click journal after every click
    journal_min_free_mb: float = 16.0  # below this much free disk, clicks wait in memory
    behind_proxy: bool = False  # trust X-Forwarded-For from the proxy in front


@dataclass(frozen=True)
class WebSettings:
    """``STORYLOOP["web"]``: the pages people use (till, dashboard, forms)."""

    session_key: Secret | None = field(
        default=None, metadata={"env": "STORYLOOP_SESSION_KEY"}
    )  # else one from signing_key


@dataclass(frozen=True)
class ShopSettings:
    """``STORYLOOP["shop"]``: the till's rules (its reasons checked by :mod:`publisher.shop`)."""

    accept_with_warning: tuple[str, ...] = ()  # refusals the till may accept, with a warning
    undo_minutes: float = 5.0  # how long a redemption can be undone


@dataclass(frozen=True)
class BusinessSettings:
    """``STORYLOOP["business"]``: printed on posters (the logo is checked when one is made)."""

    name: str | None = None  # default: Pelican's SITENAME
    logo: str | None = None  # an SVG, PNG or JPEG file, relative to the site's folder


@dataclass(frozen=True)
class ReferralSettings:
    """``STORYLOOP["referrals"]``: the reward for every ``friends_per_reward`` friends."""

    reward: str
    friends_per_reward: int = 1
    max_per_referrer: int = 10


@dataclass(frozen=True)
class MailSection:
    """``STORYLOOP["digest"]`` and ``STORYLOOP["invitations"]``: who mail is from and the SMTP
    server (``smtp``: host, port, username, password…, secrets resolved; None: the email
    channel's)."""

    to: str | None = None
    sender: str | None = None
    lang: str | None = None
    days: int = 7
    account: str | None = None
    smtp: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Store:
    """One shop from ``STORYLOOP["stores"]``. ``address`` and ``hours`` are printed on posters as
    written, one entry per line (a string with line breaks, or a list of lines); the till reads
    amounts in its ``currency`` and ``locale``, in its ``timezone`` (default: the site's)."""

    id: str
    name: str  # as written, else the id
    region: str | None = None
    address: tuple[str, ...] = ()
    hours: tuple[str, ...] = ()
    currency: str | None = None
    locale: str | None = None
    timezone: str | None = None
    named: bool = True  # whether the settings give a name (the theme shows only a given one)


@dataclass(frozen=True)
class EngineSettings:
    """``STORYLOOP``: every setting of the engine, typed, with its default."""

    timezone: str = "UTC"  # Pelican's TIMEZONE comes first
    database_url: str = "sqlite:///var/storyloop.db"  # STORYLOOP_DATABASE_URL comes first
    var_dir: str = "var"
    grace_period_hours: float = 6.0  # a post later than this after its time is not sent
    max_attempts: int = 8
    sweep_seconds: float = 30.0  # how often `run` re-plans and recovers
    lease_seconds: float = 120.0  # how long a claimed delivery is one worker's
    claim_batch: int = 20
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    publish_threads: int = 4
    metrics_minutes: float = 60.0  # 0: never read engagement back
    testimonial_categories: tuple[str, ...] = ("testimonials",)
    category_channels: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: types.MappingProxyType({})
    )
    default_channels: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # the site's own header fields: not reported as unknown
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    web: WebSettings = field(default_factory=WebSettings)
    shop: ShopSettings = field(default_factory=ShopSettings)
    business: BusinessSettings = field(default_factory=BusinessSettings)
    stores: Mapping[str, Store] = field(default_factory=lambda: types.MappingProxyType({}))
    referrals: ReferralSettings | None = None  # None: no referral codes handed out
    digest: MailSection | None = None
    invitations: MailSection | None = None
    # channel name -> its settings as written (``type`` filled in), secrets not yet resolved:
    # read by each channel's declarations in :class:`ConfiguredChannel`
    channels: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: types.MappingProxyType({})
    )
    unknown: tuple[str, ...] = ()  # keys of STORYLOOP no part of the engine reads


HAND_READ = frozenset(
    {
        "category_channels",
        "stores",
        "referrals",
        "digest",
        "invitations",
        "channels",
        "unknown",
    }
)


def read_engine(raw: object, where: Where) -> EngineSettings:
    """The ``STORYLOOP`` dict as :class:`EngineSettings`; a SettingsError for a wrong value."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where.source}: STORYLOOP: must be a dict")
    values = _section_values(EngineSettings, raw, (), where)
    known = {f.name for f in fields(EngineSettings)} - {"unknown"}
    return EngineSettings(
        **values,
        category_channels=_routes(raw.get("category_channels"), where),
        stores=_stores(raw.get("stores"), where),
        referrals=_referrals(raw.get("referrals"), where),
        digest=_mail(raw.get("digest"), ("digest",), where),
        invitations=_mail(raw.get("invitations"), ("invitations",), where),
        channels=_channels(raw.get("channels"), where),
        unknown=tuple(str(k) for k in raw if k not in known),
    )


def _section(cls: type[T], raw: object, path: tuple[str, ...], where: Where) -> T:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise where.error(path, raw, "a dict")
    return cls(**_section_values(cls, raw, path, where))


def _section_values(
    cls: type[Any], raw: Mapping[str, Any], path: tuple[str, ...], where: Where
) -> dict[str, Any]:
    """The fields of ``cls`` read from ``raw`` by their types; a field absent keeps its default."""
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in HAND_READ and cls is EngineSettings:
            continue
        here = (*path, f.name)
        hint = hints[f.name]
        given = raw.get(f.name)
        if is_dataclass(hint) and isinstance(hint, type):
            values[f.name] = _section(hint, given, here, where)
        elif hint == Secret | None:
            values[f.name] = _secret(given, f.metadata.get("env"), here, where)
        elif given is not None:
            values[f.name] = _typed(hint, given, here, where)
    return values


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The field types of ``cls``, worked out once per process."""
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = get_type_hints(cls)
    return found


def _secret(given: object, env: str | None, path: tuple[str, ...], where: Where) -> Secret | None:
    if given is None:
        given = {"env": env} if env else None
    if given is None:
        return None
    if isinstance(given, Secret):
        return given
    if is_secret_ref(given):
        found: Secret | None = resolve_secrets(given)
        return found
    if isinstance(given, str) and given:
        return Secret(given, path[-1])
    raise where.error(path, given, 'a secret, {"env": "VARIABLE"}', secret=True)


def _typed(hint: Any, given: object, path: tuple[str, ...], where: Where) -> Any:
    number = isinstance(given, int | float) and not isinstance(given, bool)
    if hint is bool:
        if isinstance(given, bool):
            return given
        raise where.error(path, given, "True or False")
    if hint is int:
        if number and float(given).is_integer():  # type: ignore[arg-type]
            return int(given)  # type: ignore[call-overload]
        if isinstance(given, str) and given.strip().isdigit():
            return int(given)
        raise where.error(path, given, "a whole number")
    if hint is float:
        if number:
            return float(given)  # type: ignore[arg-type]
        if isinstance(given, str) and re.fullmatch(r"\s*\d+(\.\d*)?\s*", given):
            return float(given)
        raise where.error(path, given, "a number")
    if hint in (str, str | None):
        if isinstance(given, str) or number:
            return str(given)
        raise where.error(path, given, "text")
    if hint == tuple[str, ...]:
        if isinstance(given, list | tuple | set | frozenset) and all(
            isinstance(v, str) for v in given
        ):
            return tuple(given)
        raise where.error(path, given, "a list of text")
    raise TypeError(f"no reader for {hint!r}")  # a field of a type this module cannot read


def _routes(raw: object, where: Where) -> Mapping[str, tuple[str, ...]]:
    if raw is None:
        return types.MappingProxyType({})
    path = ("category_channels",)
    if not isinstance(raw, Mapping):
        raise where.error(path, raw, 'a dict of category -> channels, e.g. {"news": ["x"]}')
    return types.MappingProxyType(
        {str(k): _typed(tuple[str, ...], v, (*path, str(k)), where) for k, v in raw.items()}
    )


def _lines(store: str, key: str, value: object, where: Where) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(line.strip() for line in value.splitlines() if line.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    line = where.line("stores", store, key)
    raise SettingsError(
        f"{where.source.name}:{line}: STORYLOOP stores.{store}.{key}: "
        "expected text or a list of lines"
    )


def parse_store(store_id: str, raw: object, where: Where | None = None) -> Store:
    where = where or Where(Path(DEFAULT_CONFIG))
    if not isinstance(raw, Mapping):
        raise SettingsError(f"STORYLOOP stores.{store_id}: expected a dict with name, region, ...")
    region, currency = raw.get("region"), raw.get("currency")
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", str(currency)):
        raise SettingsError(
            f"{where.source}: STORYLOOP stores: {store_id}: currency {currency!r} "
            "(expected a three-letter code such as EUR or CNY)"
        )
    locale = raw.get("locale")
    if locale:
        _check_locale(store_id, str(locale), where)
    zone = raw.get("timezone")
    return Store(
        id=store_id,
        name=str(raw.get("name") or store_id),
        region=str(region) if region else None,
        address=_lines(store_id, "address", raw.get("address"), where),
        hours=_lines(store_id, "hours", raw.get("hours"), where),
        currency=str(currency) if currency else None,
        locale=str(locale) if locale else None,
        timezone=str(zone) if zone else None,
        named=bool(raw.get("name")),
    )


def _check_locale(store_id: str, locale: str, where: Where) -> None:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(locale)
    except (ValueError, UnknownLocaleError):
        raise SettingsError(
            f"{where.source}: STORYLOOP stores: {store_id}: locale {locale!r} "
            "(expected one like de_DE or zh_CN)"
        ) from None


def _stores(raw: object, where: Where) -> Mapping[str, Store]:
    if raw is None:
        return types.MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where.source}: STORYLOOP stores: must be a dict")
    return types.MappingProxyType(
        {str(k): parse_store(str(k), v or {}, where) for k, v in raw.items()}
    )


def _referrals(raw: object, where: Where) -> ReferralSettings | None:
    if raw is None:
        return None
    at = f'{where.source}: STORYLOOP["referrals"]'
    if not isinstance(raw, Mapping):
        raise SettingsError(f'{at}: expected a dict, e.g. {{"reward": "a free coffee"}}')
    reward = raw.get("reward")
    if not isinstance(reward, str) or not reward.strip():
        raise SettingsError(
            f'{at}["reward"]: expected what the referrer is given, e.g. "a free coffee"'
        )
    defaults = ReferralSettings(reward.strip())
    return ReferralSettings(
        defaults.reward,
        _count(raw, "friends_per_reward", defaults.friends_per_reward, at),
        _count(raw, "max_per_referrer", defaults.max_per_referrer, at),
    )


def _count(raw: Mapping[str, Any], name: str, default: int, at: str) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
        raise SettingsError(f'{at}["{name}"]: expected a whole number from 1 to 10000')
    return value


def _mail(raw: object, path: tuple[str, ...], where: Where) -> MailSection | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise where.error(path, raw, 'a dict, e.g. {"to": "owner@example.com"}')
    smtp = raw.get("smtp")
    if smtp is not None and not isinstance(smtp, Mapping):
        raise where.error((*path, "smtp"), smtp, "a dict with host, port, username, password")
    values = _section_values(
        MailSection, {k: v for k, v in raw.items() if k != "smtp"}, path, where
    )
    return MailSection(**values, smtp=frozen(resolve_secrets(dict(smtp))) if smtp else None)


def _channels(raw: object, where: Where) -> Mapping[str, Mapping[str, Any]]:
    if raw is None:
        return types.MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise where.error(("channels",), raw, "a dict of channel name -> its settings")
    out: dict[str, Mapping[str, Any]] = {}
    for name, conf in raw.items():
        if not isinstance(conf, Mapping):
            raise where.error(("channels", str(name)), conf, 'a dict, e.g. {"type": "mastodon"}')
        out[str(name)] = types.MappingProxyType({"type": str(name), **dict(conf)})
    return types.MappingProxyType(out)


# --------------------------------------------------------------------------- a channel


@dataclass(frozen=True)
class ConfiguredChannel:
    """One configured channel, read when the settings are: its class, its settings read by that
    class's declarations (typed, defaults filled in, secrets resolved), and what they refuse:
    values of the wrong kind, and keys no declaration names. ``missing_error`` is set instead
    when no installed channel has its type."""

    name: str
    written: Mapping[str, Any]  # as the file says it, secrets by reference
    cls: type[Channel] | None
    values: Mapping[str, Any]
    problems: tuple[SettingProblem, ...] = ()
    unknown: tuple[str, ...] = ()
    missing_error: Exception | None = None


def read_channel(name: str, written: Mapping[str, Any], settings: Settings) -> ConfiguredChannel:
    from channels.base import ENGINE_GIVEN, ChannelNotFound, load_class

    conf = dict(resolve_secrets(dict(written)))
    conf["name"] = name
    conf.setdefault("tracking_base_url", settings.tracking_base_url)
    conf.setdefault("site_url", settings.site_url)
    conf.setdefault("site_root", str(settings.root))
    try:
        cls = load_class(str(conf.get("type") or name))
    except (ChannelNotFound, ImportError) as exc:
        return ConfiguredChannel(name, written, None, types.MappingProxyType(conf), (), (), exc)
    values, problems = cls.read_settings(conf)
    declared = {s.name for s in cls.declared_settings()} | set(ENGINE_GIVEN)
    unknown = tuple(k for k in written if k not in declared)
    return ConfiguredChannel(name, written, cls, values, tuple(problems), unknown)


# --------------------------------------------------------------------------- the whole


@dataclass(frozen=True)
class Settings:
    """Everything the engine needs, read once from ``pelicanconf.py``."""

    root: Path
    pelican: Mapping[str, Any]
    engine: EngineSettings = field(default_factory=EngineSettings)
    source: Path = field(default=Path(DEFAULT_CONFIG))

    @property
    def content_path(self) -> Path:
        return self.root / str(self.pelican.get("PATH", "content"))

    @property
    def output_path(self) -> Path:
        return self.root / str(self.pelican.get("OUTPUT_PATH", "output"))

    @property
    def manifest_path(self) -> Path:
        return self.output_path / "storyloop-manifest.json"

    @property
    def site_url(self) -> str:
        return str(self.pelican.get("SITEURL", "")).rstrip("/")

    @property
    def tracking(self) -> TrackingSettings:
        return self.engine.tracking

    @property
    def tracking_base_url(self) -> str:
        """Where tracked links point: ``<this>/go/<code>``."""
        return self.engine.tracking.base_url.rstrip("/")

    @property
    def timezone(self) -> str:
        return str(self.pelican.get("TIMEZONE") or self.engine.timezone)

    @property
    def var_dir(self) -> Path:
        return self.root / self.engine.var_dir

    @property
    def database_url(self) -> str:
        return database_url(self.engine, self.root)

    @property
    def channels(self) -> Mapping[str, Mapping[str, Any]]:
        """Configured channels by name, as written; each has a ``type`` (defaults to its name)."""
        return self.engine.channels

    @property
    def stores(self) -> Mapping[str, Store]:
        """Configured stores by id, in the order the settings list them."""
        return self.engine.stores

    @cached_property
    def configured(self) -> Mapping[str, ConfiguredChannel]:
        """Every configured channel read by its class's declarations, once, when first asked:
        the commands that open, list or check channels ask as they start; the others (the
        tracker, a report) import no adapter."""
        return types.MappingProxyType(
            {name: read_channel(name, conf, self) for name, conf in self.channels.items()}
        )

    def channel_settings(self, name: str) -> dict[str, Any]:
        """One channel's settings with secrets resolved from the environment."""
        if name not in self.channels:
            known = ", ".join(sorted(self.channels)) or "none"
            raise SettingsError(f'No channel named "{name}" is configured (configured: {known})')
        resolved: dict[str, Any] = resolve_secrets(dict(self.channels[name]))
        return resolved

    def where(self) -> Where:
        return Where.of(self.source)


def database_url(engine: EngineSettings, root: Path) -> str:
    """``STORYLOOP_DATABASE_URL``, else ``database_url``; a relative SQLite file is the site's."""
    url = os.environ.get("STORYLOOP_DATABASE_URL") or engine.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = "sqlite:///" + str(root / url[len("sqlite:///") :])
    return url


def load(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read ``pelicanconf.py`` (or the file named): the engine's settings typed and checked."""
    source = Path(path or os.environ.get("STORYLOOP_SETTINGS") or DEFAULT_CONFIG).resolve()
    if not source.is_file():
        raise SettingsError(f"{source}: settings file not found", hint="run from the site's folder")
    sys.path.insert(0, str(source.parent))  # publishconf.py does `from pelicanconf import *`
    try:
        namespace = runpy.run_path(str(source))
    except Exception as exc:
        raise SettingsError(f"{source}: cannot be loaded: {exc}") from exc
    finally:
        sys.path.remove(str(source.parent))
    pelican = {k: v for k, v in namespace.items() if k.isupper()}
    return from_pelican(pelican, source.parent, source)


def from_pelican(
    pelican: Mapping[str, Any], root: Path, source: Path | str = DEFAULT_CONFIG
) -> Settings:
    """Settings from Pelican's settings (the file's upper-case names), read as :func:`load`
    reads them."""
    return Settings(
        root=root, pelican=pelican, engine=engine_settings(pelican, source), source=Path(source)
    )


def engine_settings(
    pelican: Mapping[str, Any], source: Path | str = DEFAULT_CONFIG
) -> EngineSettings:
    """The ``STORYLOOP`` dict of Pelican's settings, typed: what the Pelican plugin reads."""
    return read_engine(pelican.get("STORYLOOP"), Where.of(Path(source)))
