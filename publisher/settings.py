"""Settings in one place: ``pelicanconf.py`` holds the site's settings and, under ``STORYLOOP``,
the engine's. Defaults live here and are merged under what the file says. Secrets are given by
reference (``{"env": "NAME"}``) and resolved into :class:`Secret`, which never prints its value.
"""

from __future__ import annotations

import copy
import os
import runpy
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channels.contract import Secret as Secret  # where adapters find it too
from publisher.errors import SettingsError

DEFAULT_CONFIG = "pelicanconf.py"

DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "database_url": "sqlite:///var/storyloop.db",
    "var_dir": "var",
    "grace_period_hours": 6,
    "max_attempts": 8,
    "sweep_seconds": 30,
    "lease_seconds": 120,
    "tracking": {
        "base_url": "http://127.0.0.1:8000",
        "api_token": {"env": "STORYLOOP_API_TOKEN"},
        "signing_key": {"env": "STORYLOOP_SIGNING_KEY"},
        "shopify_secret": {"env": "STORYLOOP_SHOPIFY_SECRET"},
        "host": "127.0.0.1",
        "port": 8000,
    },
    "web": {"session_key": {"env": "STORYLOOP_SESSION_KEY"}},
    "channels": {},
    # which posts are testimonials: these categories, and any post with a Customer field
    "testimonial_categories": ["testimonials"],
    # where a post that names no Channels goes: by category (name or slug), else the default
    "category_channels": {},
    "default_channels": [],
    # the site's own header fields: not reported as unknown
    "fields": [],
}


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


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if (
            isinstance(value, Mapping)
            and isinstance(out.get(key), dict)
            and not is_secret_ref(value)
        ):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Store:
    """One shop from ``STORYLOOP["stores"]``. ``address`` and ``hours`` are printed on posters as
    written, one entry per line (a string with line breaks, or a list of lines)."""

    id: str
    name: str
    region: str | None = None
    address: tuple[str, ...] = ()
    hours: tuple[str, ...] = ()


def _lines(store: str, key: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(line.strip() for line in value.splitlines() if line.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise SettingsError(f"STORYLOOP stores.{store}.{key}: expected text or a list of lines")


def parse_store(store_id: str, raw: object) -> Store:
    if not isinstance(raw, Mapping):
        raise SettingsError(f"STORYLOOP stores.{store_id}: expected a dict with name, region, ...")
    region = raw.get("region")
    return Store(
        id=store_id,
        name=str(raw.get("name") or store_id),
        region=str(region) if region else None,
        address=_lines(store_id, "address", raw.get("address")),
        hours=_lines(store_id, "hours", raw.get("hours")),
    )


@dataclass(frozen=True)
class Settings:
    """Everything the engine needs, read once from ``pelicanconf.py``."""

    root: Path
    pelican: Mapping[str, Any]
    engine: Mapping[str, Any]
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
    def tracking_base_url(self) -> str:
        """Where tracked links point: ``<this>/go/<code>``."""
        return str(self.engine["tracking"]["base_url"]).rstrip("/")

    @property
    def timezone(self) -> str:
        return str(self.pelican.get("TIMEZONE") or self.engine["timezone"])

    @property
    def var_dir(self) -> Path:
        return self.root / str(self.engine["var_dir"])

    @property
    def database_url(self) -> str:
        url = os.environ.get("STORYLOOP_DATABASE_URL") or str(self.engine["database_url"])
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            url = "sqlite:///" + str(self.root / url[len("sqlite:///") :])
        return url

    @property
    def channels(self) -> Mapping[str, Mapping[str, Any]]:
        """Configured channels by name; each has a ``type`` (defaults to its name)."""
        raw = self.engine.get("channels") or {}
        return {name: {"type": name, **dict(conf)} for name, conf in raw.items()}

    @property
    def stores(self) -> dict[str, Store]:
        """Configured stores by id, in the order the settings list them."""
        raw = self.engine.get("stores") or {}
        if not isinstance(raw, Mapping):
            raise SettingsError("STORYLOOP stores: expected a dict of store id -> settings")
        return {str(k): parse_store(str(k), v) for k, v in raw.items()}

    def channel_settings(self, name: str) -> dict[str, Any]:
        """One channel's settings with secrets resolved from the environment."""
        if name not in self.channels:
            known = ", ".join(sorted(self.channels)) or "none"
            raise SettingsError(f'No channel named "{name}" is configured (configured: {known})')
        resolved: dict[str, Any] = resolve_secrets(self.channels[name])
        return resolved

    def secret(self, *path: str) -> Secret | None:
        node: Any = self.engine
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        resolved = resolve_secrets(node)
        return resolved if isinstance(resolved, Secret) else None


def load(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read ``pelicanconf.py`` (or the file named) and merge its STORYLOOP dict over defaults."""
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
    return Settings(
        root=source.parent, pelican=pelican, engine=engine_settings(pelican, source), source=source
    )


def engine_settings(
    pelican: Mapping[str, Any], source: Path | str = DEFAULT_CONFIG
) -> dict[str, Any]:
    """The ``STORYLOOP`` dict of Pelican's settings, merged over the defaults."""
    engine = pelican.get("STORYLOOP") or {}
    if not isinstance(engine, Mapping):
        raise SettingsError(f"{source}: STORYLOOP: must be a dict")
    return merge(DEFAULTS, engine)
