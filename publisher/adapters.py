"""The engine's side of the channel contract: configured channels opened with what they need.

An adapter sees its own settings (secrets resolved, plus the site's addresses) and a
:class:`~channels.contract.ChannelContext` built here: the clock, an HTTP session, the opt-outs,
the signed unsubscribe links and a state store in the engine's database. Nothing in
``channels`` reaches back into the engine for any of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from channels.base import (
    ALLOW_HTTP_HINT,
    Channel,
    ChannelContext,
    ChannelNotFound,
    ChannelSettings,
    Receipt,
    SettingProblem,
    insecure_endpoints,
    load_class,
)
from publisher.errors import SettingsError
from publisher.settings import ConfiguredChannel, Settings, is_secret_ref
from publisher.settings import read_channel as read_configured

log = logging.getLogger(__name__)

OFFLINE_CHANNEL = "offline"  # posters and QR codes: tracked like a channel, opened by none
DEFAULT_MEDIUM = "social"

_announced: set[tuple[str, str]] = set()


def channel_context(
    settings: Settings,
    engine: Engine | None = None,
    *,
    optouts: Callable[[], set[str]] | None = None,
) -> ChannelContext:
    """The context the engine hands its adapters: their state in ``engine``'s database (in
    memory without one, for commands that only render), the opt-outs it knows."""
    from channels.contract import MemoryState
    from publisher.state import DatabaseState

    return ChannelContext(
        var_dir=settings.var_dir,
        content_dir=settings.content_path,
        optouts=optouts or set,
        state=DatabaseState(engine) if engine is not None else MemoryState(),
    )


def configured_channel(name: str, settings: Settings) -> ConfiguredChannel:
    """The channel ``name`` as the settings were read (a network not configured: read with
    nothing but its name as type)."""
    found = settings.configured.get(name)
    return found if found is not None else read_configured(name, {"type": name}, settings)


def engine_settings(name: str, settings: Settings) -> dict[str, Any]:
    """One configured channel's settings (typed, secrets resolved) plus what the engine gives
    adapters."""
    return dict(configured_channel(name, settings).values)


def unsubscribe_links(settings: Settings, conf: Mapping[str, Any]) -> Callable[[str], str] | None:
    """Signed one-click unsubscribe links on the channel's tracker; None without a real key."""
    from publisher.tracking.optout import signing_key, unsubscribe_link

    key = signing_key(settings)
    return None if key is None else unsubscribe_link(str(conf.get("tracking_base_url", "")), key)


def missing_for(
    name: str, settings: Settings, cls: type[Channel], conf: Mapping[str, Any]
) -> list[str]:
    """Required settings that are absent, and secrets the settings name but the environment
    lacks (a password named in the settings is meant to be used, even where it is optional)."""
    raw = settings.channels.get(name, {})
    unset = [key for key, value in raw.items() if is_secret_ref(value) and conf.get(key) is None]
    return list(dict.fromkeys([*cls.missing_settings(conf), *unset]))


def read_channel(
    name: str, settings: Settings
) -> tuple[type[Channel], ChannelSettings, list[SettingProblem]]:
    """The class of the configured channel ``name`` and its settings read by that class's
    declarations (typed, defaults filled in), with every value they refuse."""
    found = configured_channel(name, settings)
    if found.cls is None:
        raise found.missing_error or ChannelNotFound(name, [])
    values = found.values
    if not isinstance(values, ChannelSettings):
        values, _ = found.cls.read_settings(values)
    return found.cls, values, list(found.problems)


def setting_line(settings: Settings, channel: str, key: str) -> int:
    """The line of ``key`` in the settings file, looked for from where ``channel`` is named
    (1 when the file does not say it: a default, or settings built in code)."""
    return settings.where().line("channels", channel, key)


def setting_error(settings: Settings, problem: SettingProblem) -> SettingsError:
    """One line: file, line, field, the value (never a secret's) and what was expected."""
    spec = problem.spec
    where = f"{settings.source.name}:{setting_line(settings, problem.channel, spec.name)}"
    field = f"STORYLOOP.channels.{problem.channel}.{spec.name}"
    return SettingsError(f"{where}: {field}: {problem.shown} (expected {spec.expected})")


def open_channel(name: str, settings: Settings, context: ChannelContext) -> Channel:
    """The configured channel ``name``, or its outbox when a required setting is missing."""
    cls, conf, problems = read_channel(name, settings)
    if problems:
        raise setting_error(settings, problems[0])
    if context.unsubscribe_url is None:
        context = replace(context, unsubscribe_url=unsubscribe_links(settings, conf))
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


def stored_receipt(remote_id: str, url: str | None, stored: str | None) -> Receipt:
    """The receipt as the ledger keeps it (remote id, URL and whatever else the adapter said),
    for ``metrics()`` and ``delete()``; one that is not a JSON object keeps the id and URL."""
    try:
        data = json.loads(stored) if stored else {}
    except ValueError:
        data = {}
    extra = (
        {k: v for k, v in data.items() if k not in ("remote_id", "url")}
        if isinstance(data, dict)
        else {}
    )
    return Receipt(remote_id=remote_id, url=url, extra=extra)


def utm_medium(settings: Settings, channel: str) -> str:
    """The ``utm_medium`` of a configured channel's links, as its class declares it."""
    kind = str(settings.channels.get(channel, {}).get("type", channel))
    return _medium_of(kind)


@lru_cache(maxsize=256)
def _medium_of(kind: str) -> str:
    if kind == OFFLINE_CHANNEL:
        return "offline"
    try:
        return load_class(kind).utm_medium
    except (ChannelNotFound, ImportError):
        return DEFAULT_MEDIUM
