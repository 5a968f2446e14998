"""``storyloop check`` and ``storyloop build``: the editors' commands."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from publisher.content import (
    Header,
    Problem,
    Rules,
    content_files,
    read_header,
    split_list,
    validate_all,
)
from publisher.settings import Settings


def settings_problems(settings: Settings) -> list[Problem]:
    """Channel settings that cannot work: unknown channel types, a Weibo safe domain that the
    tracked links do not use, and what each adapter's own ``check_settings`` finds."""
    from channels.base import ALLOW_HTTP_HINT, ChannelNotFound, insecure_endpoints, load_class
    from publisher.tracking.optout import KEY_HINT, signing_key_problems

    source = str(settings.source.relative_to(settings.root))
    lines = settings.source.read_text(encoding="utf-8").splitlines()
    base_url = settings.tracking_base_url
    problems = []
    for name, conf in settings.channels.items():
        line = next((i for i, text in enumerate(lines, 1) if f'"{name}"' in text), 1)
        field = f"STORYLOOP.channels.{name}"
        try:
            cls = load_class(str(conf["type"]))
        except ChannelNotFound as exc:
            problems.append(Problem(source, line, field, str(exc), "an installed channel type"))
            continue
        except ImportError as exc:
            message = f"channel type {conf['type']!r} cannot be loaded: {exc}"
            problems.append(Problem(source, line, field, message, "a working installation"))
            continue
        check = getattr(cls, "check_settings", None)
        for message in check(conf, base_url) if check else []:
            problems.append(Problem(source, line, field, message, "see docs/CHANNELS.md"))
        for message in insecure_endpoints(conf):
            problems.append(Problem(source, line, field, message, ALLOW_HTTP_HINT))
    for name, message in signing_key_problems(settings).items():
        line = next((i for i, text in enumerate(lines, 1) if f'"{name}"' in text), 1)
        field = f"STORYLOOP.channels.{name}"
        problems.append(Problem(source, line, field, message, KEY_HINT))
    return problems


def story_channel_problems(settings: Settings, headers: list[Header]) -> list[Problem]:
    """What each channel a story is routed to finds in it (its adapter's ``check_story``)."""
    from channels.base import ChannelNotFound, engine_settings, load_class

    problems = []
    for header in headers:
        for name in split_list(header.get("channels")):
            if name not in settings.channels:
                continue  # an unknown channel name is the content validator's to report
            try:
                cls = load_class(str(settings.channels[name].get("type") or name))
            except (ChannelNotFound, ImportError):
                continue  # reported by settings_problems
            conf = engine_settings(name, settings)
            for key, message, expected in cls.check_story(header.values, conf):
                field = header.names.get(key, key.title())
                line = header.line(key if key in header.lines else "channels")
                problems.append(Problem(header.path, line, field, f"{name}: {message}", expected))
    return problems


def check_all(settings: Settings) -> list[Problem]:
    rules = Rules.from_pelican(settings.pelican, settings.engine, settings.root)
    paths = settings.pelican.get("ARTICLE_PATHS") or [""]
    files = content_files(settings.content_path, paths)
    headers = [read_header(f, os.path.relpath(f, settings.root)) for f in files]
    problems = settings_problems(settings) + validate_all(headers, rules)
    return problems + story_channel_problems(settings, headers)


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@click.option(
    "--fatal",
    type=click.Choice(["warnings", "errors"]),
    default="errors",
    help="Exit 1 on warnings too with --fatal warnings.",
)
@click.pass_obj
def check_cmd(obj: Any, as_json: bool, fatal: str) -> None:
    """Validate every content file and the settings; one line per problem."""
    problems = check_all(obj.settings)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        click.echo(json.dumps([p.to_json() for p in problems], ensure_ascii=False, indent=2))
    else:
        for problem in problems:
            label = "error" if problem.severity == "error" else "warning"
            click.echo(f"{problem}  [{label}]", err=problem.severity == "error")
        warnings = len(problems) - len(errors)
        click.echo(f"{len(errors)} error(s), {warnings} warning(s)", err=True)
    if errors or (fatal == "warnings" and problems):
        sys.exit(1)


@click.command("build")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Output folder.")
@click.option("--fatal", type=click.Choice(["warnings", "errors"]), help="Make these fatal.")
@click.pass_obj
def build_cmd(obj: Any, output: Path | None, fatal: str | None) -> None:
    """Build the site and the manifest with Pelican (same as plain `pelican`, plugin included)."""
    import pelican

    settings: Settings = obj.settings
    argv = [str(settings.content_path), "-s", str(settings.source), "--log-handler", "plain"]
    if output:
        argv += ["-o", str(output)]
    if fatal:
        argv += ["--fatal", fatal]
    try:
        pelican.main(argv)
    except SystemExit as exc:
        if exc.code:
            click.secho("error: the build failed (see the messages above)", fg="red", err=True)
            sys.exit(1)
    manifest = (output or settings.output_path) / "storyloop-manifest.json"
    count = len(json.loads(manifest.read_text(encoding="utf-8"))["stories"])
    click.echo(f"built {count} stories into {manifest.parent}")


COMMANDS = [check_cmd, build_cmd]
