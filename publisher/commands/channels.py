"""``storyloop channels`` and ``storyloop preview``: what can post where, and what it would say."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from channels.base import (
    Channel,
    ChannelContext,
    ChannelNotFound,
    Links,
    engine_settings,
    installed,
    load_class,
    missing_for,
)
from publisher.errors import NotFound
from publisher.model import Story, load_manifest
from publisher.settings import Settings


def _context(settings: Settings) -> ChannelContext:
    return ChannelContext(var_dir=settings.var_dir, content_dir=settings.content_path)


def _class_for(name: str, settings: Settings) -> type[Channel]:
    conf = settings.channels.get(name, {"type": name})
    try:
        return load_class(str(conf.get("type") or name))
    except ChannelNotFound as exc:
        configured = ", ".join(sorted(settings.channels)) or "none"
        raise NotFound(f"{exc}; configured: {configured}") from None


def channel_rows(settings: Settings) -> list[dict[str, str]]:
    """One row per configured channel, then one per installed type nobody configured."""
    rows = []
    for name, conf in settings.channels.items():
        type_name = str(conf.get("type") or name)
        try:
            cls = load_class(type_name)
        except ChannelNotFound:
            rows.append(_row(name, type_name, "unknown type", "", ""))
            continue
        missing = missing_for(name, settings, cls, engine_settings(name, settings))
        status = f"outbox: var/outbox/{name}/" if missing else "ready"
        rows.append(_row(name, type_name, status, ", ".join(missing), cls.setup_url))
    used = {str(c.get("type") or n) for n, c in settings.channels.items()}
    for type_name, cls in sorted(installed().items()):
        if type_name not in used:
            required = [s.name for s in cls.settings_spec if s.required]
            rows.append(_row("", type_name, "not configured", ", ".join(required), cls.setup_url))
    return rows


def _row(name: str, type_name: str, status: str, missing: str, url: str) -> dict[str, str]:
    return {"name": name, "type": type_name, "status": status, "missing": missing, "setup": url}


@click.command("channels")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.pass_obj
def channels_cmd(obj: Any, as_json: bool) -> None:
    """Every installed channel: configured or not, missing settings, where to get them."""
    rows = channel_rows(obj.settings)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="Channels")
    for column in ("Channel", "Type", "Status", "Missing settings", "Setup"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"] or "—", row["type"], row["status"], row["missing"], row["setup"])
    Console().print(table)


def find_story(settings: Settings, slug: str) -> Story:
    manifest = load_manifest(settings.manifest_path)
    stories = manifest.by_slug()
    if slug not in stories:
        known = ", ".join(sorted(stories)[:12]) or "none"
        raise NotFound(f'No story "{slug}" in {settings.manifest_path} (stories: {known})')
    return stories[slug]


def preview_channels(settings: Settings, story: Story, channel: str | None) -> list[str]:
    if channel:
        return [channel]
    return list(story.channels) or list(settings.channels)


@click.command("preview")
@click.argument("story")
@click.option("--channel", "-C", "channel", help="One channel (configured name or type).")
@click.option("--variant", "-V", help="Headline variant, e.g. A.")
@click.option("--offer-code", help="Show this offer code where the real one will go.")
@click.option("--payload/--no-payload", default=True, help="Also print the network payload.")
@click.pass_obj
def preview_cmd(
    obj: Any,
    story: str,
    channel: str | None,
    variant: str | None,
    offer_code: str | None,
    payload: bool,
) -> None:
    """Print exactly what would be posted for STORY (a slug): the pure render, links untracked."""
    settings: Settings = obj.settings
    found = find_story(settings, story)
    if variant and variant not in found.variants:
        known = ", ".join(sorted(found.variants)) or "none"
        raise NotFound(f'Story "{story}" has no variant "{variant}" (variants: {known})')
    links = Links(offer_code=offer_code)
    for name in preview_channels(settings, found, channel):
        adapter = _class_for(name, settings)(engine_settings(name, settings), _context(settings))
        post = adapter.render(found, variant, links, {})
        click.secho(f"── {name} ({adapter.name}) ──", bold=True)
        click.echo(post.text)
        if payload:
            click.echo(json.dumps(post.payload, ensure_ascii=False, indent=2, default=str))
        click.echo()


COMMANDS = [channels_cmd, preview_cmd]
