"""``storyloop channels`` and ``storyloop preview``: what can post where, and what it would say."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from channels.base import (
    Channel,
    ChannelContext,
    ChannelNotFound,
    Links,
    Secret,
    SettingSpec,
    installed,
    load_class,
)
from publisher.adapters import (
    channel_context,
    engine_settings,
    missing_for,
    setting_error,
)
from publisher.errors import NotFound
from publisher.manifest import load_manifest
from publisher.model import Story
from publisher.settings import Settings, is_secret_ref


def _context(settings: Settings) -> ChannelContext:
    return channel_context(settings)  # a preview renders: no database, nothing remembered


def _class_for(name: str, settings: Settings) -> type[Channel]:
    conf = settings.channels.get(name, {"type": name})
    try:
        return load_class(str(conf.get("type") or name))
    except ChannelNotFound as exc:
        configured = ", ".join(sorted(settings.channels)) or "none"
        raise NotFound(f"{exc}; configured: {configured}") from None


def channel_rows(settings: Settings) -> list[dict[str, Any]]:
    """One row per configured channel, then one per installed type nobody configured; each
    with its settings as the channel declares them and, where configured, what they are."""
    rows = []
    for name, conf in settings.channels.items():
        type_name = str(conf.get("type") or name)
        try:
            cls = load_class(type_name)
        except ChannelNotFound:
            rows.append(_row(name, type_name, "unknown type", "", "", []))
            continue
        resolved = engine_settings(name, settings)
        parsed, problems = cls.read_settings(resolved)
        missing = missing_for(name, settings, cls, resolved)
        if problems:
            status = f"bad setting: {problems[0].spec.name}"
        else:
            status = f"outbox: var/outbox/{name}/" if missing else "ready"
        written = settings.channels[name]
        described = [_setting(s, written, parsed) for s in cls.declared_settings()]
        row = _row(name, type_name, status, ", ".join(missing), cls.setup_url, described)
        row["unknown"] = list(settings.configured[name].unknown)
        rows.append(row)
    used = {str(c.get("type") or n) for n, c in settings.channels.items()}
    for type_name, cls in sorted(installed().items()):
        if type_name not in used:
            required = [s.name for s in cls.settings_spec if s.required]
            described = [_setting(s, None, None) for s in cls.declared_settings()]
            rows.append(
                _row("", type_name, "not configured", ", ".join(required), cls.setup_url, described)
            )
    return rows


def _row(
    name: str,
    type_name: str,
    status: str,
    missing: str,
    url: str,
    described: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_name,
        "status": status,
        "missing": missing,
        "setup": url,
        "settings": described,
    }


def _setting(
    spec: SettingSpec, written: Mapping[str, Any] | None, parsed: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One declared setting for people: what it holds, its default, and what it is now. A
    secret's value is never shown: only whether it is set, and from which variable."""
    entry: dict[str, Any] = {
        "setting": spec.name,
        "holds": spec.expected,
        "default": spec.default,
        "required": spec.required,
        "secret": spec.secret,
        "help": spec.help,
    }
    if written is None or parsed is None:
        return entry
    raw, value = written.get(spec.name), parsed.get(spec.name)
    if spec.secret or isinstance(value, Secret) or is_secret_ref(raw):
        variable = f" from ${raw['env']}" if isinstance(raw, Mapping) and is_secret_ref(raw) else ""
        entry["value"] = f"set{variable}" if value else f"not set{variable}"
    else:
        entry["value"] = value
    return entry


def _shown(value: Any) -> str:
    return "—" if value is None else json.dumps(value, ensure_ascii=False)


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
    for row in rows:
        title = (
            f"{row['name']} ({row['type']})" if row["name"] else f"{row['type']} (not configured)"
        )
        click.echo(f"\nSettings of {title}:")
        for entry in row["settings"]:
            click.echo("  " + _setting_line(entry))
        for key in row.get("unknown", ()):
            click.echo(f"  {key}: not a setting of {row['type']}, ignored")


def _setting_line(entry: Mapping[str, Any]) -> str:
    """``name (secret): what it holds, default …, now …: help`` (a secret's value never)."""
    marks = [
        m for m, on in (("secret", entry["secret"]), ("optional", not entry["required"])) if on
    ]
    said = entry["setting"] + (f" ({', '.join(marks)})" if marks else "")
    facts = [str(entry["holds"])]
    if entry["default"] is not None:
        facts.append(f"default {_shown(entry['default'])}")
    if "value" in entry:
        now = entry["value"]
        facts.append(f"now {now}" if entry["secret"] else f"now {_shown(now)}")
    return f"{said}: {', '.join(facts)}. {entry['help']}"


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


def preview_links(
    settings: Settings, story: Story, channel: str, variant: str | None, offer_code: str | None
) -> Links:
    """Stand-ins for the tracked links and offer code a delivery would get: the tracker's
    address, codes of the real alphabet and length, derived from the delivery's identity so
    a preview is the same every time (and counts exactly like the post that will go out)."""
    from publisher.tracking import codes
    from publisher.tracking.links import offer_prefix, story_links

    def digest(*parts: str) -> int:
        seed = "\x1f".join([story.slug, channel, variant or "", *parts]).encode()
        return int.from_bytes(hashlib.blake2b(seed, digest_size=16).digest(), "big")

    def link_code(url: str) -> str:
        n, out = digest(url), []
        for _ in range(codes.LINK_CODE_LENGTH):
            n, d = divmod(n, len(codes.LINK_ALPHABET))
            out.append(codes.LINK_ALPHABET[d])
        return "".join(out)

    base = settings.tracking_base_url
    urls = {text: f"{base}/go/{link_code(url)}" for text, url in story_links(story).items()}
    if offer_code is None and story.offer:
        n = digest("offer")
        body = "".join(
            codes.OFFER_ALPHABET[(n >> (5 * i)) % len(codes.OFFER_ALPHABET)]
            for i in range(codes.OFFER_BODY_LENGTH)
        )
        offer_code = f"{offer_prefix(settings)}-{body}-{codes.check_character(body)}"
    return Links(urls=urls, offer_code=offer_code)


def preview_document(
    settings: Settings, story: Story, name: str, variant: str | None, links: Links
) -> dict[str, Any]:
    """One channel's preview as ``storyloop preview --json`` prints it (docs/CHANNELS.md)."""
    from channels.outbox import _jsonable
    from channels.text import rule_counter

    cls = _class_for(name, settings)
    conf, problems = cls.read_settings(engine_settings(name, settings))
    if problems:
        raise setting_error(settings, problems[0])
    adapter = cls(conf, _context(settings))
    post = adapter.render(story, variant, links)
    rule = adapter.length
    count = rule_counter(rule.counting, rule.url_weight, rule.limit, rule.max_bytes)
    return {
        "channel": name,
        "adapter": adapter.name,
        "variant": variant,
        "text": post.text,
        "length": {
            "counting": rule.counting,
            "limit": rule.limit or None,
            "count": count(post.text) if rule.limit else None,
        },
        "images": list(post.images),
        "links": dict(links.urls),
        "offer_code": links.offer_code,
        "payload": _jsonable(post.payload),
    }


@click.command("preview")
@click.argument("story")
@click.option("--channel", "-C", "channel", help="One channel (configured name or type).")
@click.option("--variant", "-V", help="Headline variant, e.g. A.")
@click.option("--offer-code", help="Show this offer code where the real one will go.")
@click.option(
    "--links",
    "link_mode",
    type=click.Choice(["tracked", "original"]),
    default="tracked",
    help="Links as tracked links of the real length (default) or as the story wrote them.",
)
@click.option("--payload/--no-payload", default=True, help="Also print the network payload.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (see docs/CHANNELS.md).")
@click.pass_obj
def preview_cmd(
    obj: Any,
    story: str,
    channel: str | None,
    variant: str | None,
    offer_code: str | None,
    link_mode: str,
    payload: bool,
    as_json: bool,
) -> None:
    """Print exactly what would be posted for STORY (a slug): each adapter's pure render."""
    settings: Settings = obj.settings
    found = find_story(settings, story)
    if variant and variant not in found.variants:
        known = ", ".join(sorted(found.variants)) or "none"
        raise NotFound(f'Story "{story}" has no variant "{variant}" (variants: {known})')
    documents = []
    for name in preview_channels(settings, found, channel):
        if link_mode == "tracked":
            links = preview_links(settings, found, name, variant, offer_code)
        else:
            links = Links(offer_code=offer_code)
        documents.append(preview_document(settings, found, name, variant, links))
    if as_json:
        out = {"story": found.slug, "source": found.source, "posts": documents}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for doc in documents:
        click.secho(f"── {doc['channel']} ({doc['adapter']}) ──", bold=True)
        click.echo(doc["text"])
        if payload:
            click.echo(json.dumps(doc["payload"], ensure_ascii=False, indent=2, default=str))
        click.echo()


COMMANDS = [channels_cmd, preview_cmd]
