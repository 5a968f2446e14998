"""``storyloop check``, ``storyloop build`` and ``storyloop init``: the editors' commands.

``check`` reads the content with Pelican itself (its readers, generators and every plugin the
settings name, with nothing written), so it finds exactly the posts the build finds: the same
ARTICLE_PATHS and PAGE_PATHS defaults, IGNORE_FILES, drafts, folder categories, translations,
dates from file names. It then prints what the plugin's validation found.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from publisher.content import Header, Problem
from publisher.settings import ConfiguredChannel, EngineSettings, Settings

if TYPE_CHECKING:
    from channels.base import Channel

PLUGIN = "publisher.pelican_plugin"


def _line_of(lines: list[str], pattern: str) -> int:
    return next((i for i, text in enumerate(lines, 1) if re.search(pattern, text)), 1)


def settings_problems(settings: Settings) -> list[Problem]:
    """Settings that cannot work: an empty SITEURL, unknown channel types or channels named
    in routing rules, a Weibo safe domain the tracked links do not use, a network reached over
    plain http, live email without a signing key, and what each adapter's own
    ``check_settings`` finds."""
    from channels.base import ALLOW_HTTP_HINT, ChannelNotFound, insecure_endpoints, load_class
    from publisher.adapters import setting_line
    from publisher.tracking.optout import KEY_HINT, signing_key_problems

    source = str(settings.source.relative_to(settings.root))
    lines = settings.source.read_text(encoding="utf-8").splitlines()
    base_url = settings.tracking_base_url
    problems = []
    if not settings.site_url.startswith(("http://", "https://")):
        problems.append(
            Problem(
                source,
                _line_of(lines, r"^\s*SITEURL\s*="),
                "SITEURL",
                f"{settings.site_url or 'empty'}: posts need the site's absolute address",
                'e.g. SITEURL = "https://www.example.com" (in publishconf.py: '
                "storyloop -c publishconf.py check)",
            )
        )
    for name, conf in settings.channels.items():
        line = _line_of(lines, re.escape(f'"{name}"'))
        field_name = f"STORYLOOP.channels.{name}"
        try:
            cls = load_class(str(conf["type"]))
        except ChannelNotFound as exc:
            expected = "an installed channel type"
            problems.append(Problem(source, line, field_name, str(exc), expected))
            continue
        except ImportError as exc:
            message = f"channel type {conf['type']!r} cannot be loaded: {exc}"
            problems.append(Problem(source, line, field_name, message, "a working installation"))
            continue
        found = settings.configured[name]
        problems += _declaration_problems(settings, source, name, cls, found)
        for bad in found.problems:
            spec = bad.spec
            problems.append(
                Problem(
                    source,
                    setting_line(settings, name, spec.name),
                    f"{field_name}.{spec.name}",
                    bad.shown,
                    f"expected {spec.expected}",
                )
            )
        check = getattr(cls, "check_settings", None)
        for message in check(conf, base_url) if check else []:
            problems.append(Problem(source, line, field_name, message, "see docs/CHANNELS.md"))
        for message in insecure_endpoints(conf):
            problems.append(Problem(source, line, field_name, message, ALLOW_HTTP_HINT))
    for name, message in signing_key_problems(settings).items():
        line = next((i for i, text in enumerate(lines, 1) if f'"{name}"' in text), 1)
        problems.append(Problem(source, line, f"STORYLOOP.channels.{name}", message, KEY_HINT))
    problems += routing_problems(settings, source, lines)
    known = ", ".join(f.name for f in dataclasses.fields(EngineSettings) if f.name != "unknown")
    for key in settings.engine.unknown:
        where = settings.where().line(key)
        message = "not a setting Storyloop reads: ignored"
        problems.append(
            Problem(source, where, f"STORYLOOP.{key}", message, f"one of {known}", "warning")
        )
    return problems


def _declaration_problems(
    settings: Settings, source: str, name: str, cls: type[Channel], found: ConfiguredChannel
) -> list[Problem]:
    """Warnings for keys the channel does not read (a typo, or a setting of another network).
    A required setting not given is no problem: the channel writes to its outbox, as
    ``storyloop channels`` says."""
    where = settings.where()
    field_name = f"STORYLOOP.channels.{name}"
    declared = [s.name for s in cls.declared_settings()]
    out = [
        Problem(
            source,
            where.line("channels", name, key),
            f"{field_name}.{key}",
            f"not a setting of {cls.name}: ignored",
            "one of " + ", ".join(declared),
            "warning",
        )
        for key in found.unknown
    ]
    return out


def story_channel_problems(settings: Settings, read: SiteRead) -> list[Problem]:
    """What each channel a story is routed to finds in it (its adapter's ``check_story``)."""
    from channels.base import ChannelNotFound, load_class
    from publisher.adapters import engine_settings

    problems = []
    for header in read.posts:
        for name in read.channels.get(header.path, ()):
            if name not in settings.channels:
                continue  # an unknown channel name is the content validator's to report
            try:
                cls = load_class(str(settings.channels[name].get("type") or name))
            except (ChannelNotFound, ImportError):
                continue  # reported by settings_problems
            conf = engine_settings(name, settings)
            for key, message, expected in cls.check_story(header.values, conf):
                field_name = header.names.get(key, key.title())
                line = header.line(key if key in header.lines else "channels")
                problems.append(
                    Problem(header.path, line, field_name, f"{name}: {message}", expected)
                )
    return problems


def routing_problems(settings: Settings, source: str, lines: list[str]) -> list[Problem]:
    """``category_channels`` and ``default_channels`` may name configured channels only."""
    engine, known = settings.engine, set(settings.channels)
    expected = "configured: " + (", ".join(sorted(known)) or "none")
    named = [("default_channels", c) for c in engine.default_channels]
    for category, channels in engine.category_channels.items():
        named += [(f"category_channels.{category}", c) for c in channels]
    return [
        Problem(
            source,
            _line_of(lines, key.split(".")[0]),
            f"STORYLOOP.{key}",
            f"unknown channel {channel!r}",
            expected,
        )
        for key, channel in named
        if channel not in known
    ]


@dataclass
class SiteRead:
    """What ``check`` found, read the way the build reads it."""

    problems: list[Problem] = field(default_factory=list)
    posts: list[Header] = field(default_factory=list)  # articles and translations validated
    channels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # path -> where it goes
    notes: list[str] = field(default_factory=list)  # Pelican's warnings that name no post


class PelicanLog(logging.Handler):
    """Pelican's own warnings and errors while reading (a post without a date, a file no
    reader understands), kept as problems instead of printed."""

    def __init__(self, root: Path, fallback: str) -> None:
        super().__init__(logging.WARNING)
        self.root, self.fallback = root, fallback
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("publisher") or getattr(record, "storyloop", False):
            return
        message = " ".join(record.getMessage().split())
        path = next(
            (str(a) for a in record.args or () if isinstance(a, str | os.PathLike) and _a_file(a)),
            None,
        )
        if path is None and record.levelno < logging.ERROR:
            self.notes.append(message)  # about the installation, not a post: not counted
            return
        display = os.path.relpath(os.path.abspath(path), self.root) if path else self.fallback
        severity = "error" if record.levelno >= logging.ERROR else "warning"
        self.problems.append(
            Problem(display, 1, "pelican", message, "what Pelican can read", severity)
        )


def _a_file(value: Any) -> bool:
    try:
        return os.path.isfile(value)
    except (TypeError, ValueError):
        return False


@contextmanager
def _captured(handler: PelicanLog) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("pelican", "py.warnings")]
    saved = [(lg, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, propagate in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate


def read_site(settings: Settings) -> SiteRead:
    """Run Pelican's readers and generators up to the point where pages would be written, with
    the Storyloop plugin validating what they read, and return what it found."""
    from pelican import Pelican
    from pelican.settings import read_settings

    from publisher import pelican_plugin as plugin

    conf = read_settings(
        str(settings.source),
        override={
            "PATH": str(settings.content_path),
            "CACHE_CONTENT": False,
            "LOAD_CONTENT_CACHE": False,
        },
    )
    plugin.register()  # whether or not the site lists it yet: check is how one tries it
    handler = PelicanLog(settings.root, str(settings.source.relative_to(settings.root)))
    plugin.STATE.check_only = True
    try:
        with _captured(handler):
            site = Pelican(conf)
            context = dict(site.settings)
            context |= {"generated_content": {}, "static_links": set(), "static_content": {}}
            context["localsiteurl"] = site.settings["SITEURL"]
            for cls in site._get_generator_classes():
                generator = cls(
                    context=context,
                    settings=site.settings,
                    path=site.path,
                    theme=site.theme,
                    output_path=site.output_path,
                )
                if hasattr(generator, "generate_context"):
                    generator.generate_context()
    finally:
        plugin.STATE.check_only = False
    return SiteRead(
        problems=handler.problems + list(plugin.STATE.problems),
        posts=list(plugin.STATE.checked),
        channels=dict(plugin.STATE.routes),
        notes=handler.notes,
    )


def check_all(settings: Settings) -> list[Problem]:
    read = read_site(settings)
    problems = read.problems + story_channel_problems(settings, read)
    return settings_problems(settings) + sorted_problems(problems)


def sorted_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.path, p.line, p.field))


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@click.option(
    "--fatal",
    type=click.Choice(["warnings", "errors"]),
    default="errors",
    help="Exit 1 on warnings too with --fatal warnings.",
)
@click.option("--list", "listing", is_flag=True, help="Also list each post and where it goes.")
@click.pass_obj
def check_cmd(obj: Any, as_json: bool, fatal: str, listing: bool) -> None:
    """Validate the content Pelican reads and the settings; one line per problem.

    \b
    Example:
      storyloop check --fatal warnings          # in the site's CI
      storyloop -c publishconf.py check --list  # each post, its language and channels
    """
    settings: Settings = obj.settings
    found = read_site(settings)
    story_problems = found.problems + story_channel_problems(settings, found)
    problems = settings_problems(settings) + sorted_problems(story_problems)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        click.echo(json.dumps([p.to_json() for p in problems], ensure_ascii=False, indent=2))
    else:
        if listing:
            for post in sorted(found.posts, key=lambda h: h.path):
                where = ", ".join(found.channels.get(post.path, ())) or "not posted"
                lang = post.get("lang") or "-"
                click.echo(f"{post.path}  [{post.get('category')}, {lang}]  -> {where}")
        for note in found.notes:
            click.echo(f"note: pelican: {note}", err=True)
        for problem in problems:
            label = "error" if problem.severity == "error" else "warning"
            click.echo(f"{problem}  [{label}]", err=problem.severity == "error")
        warnings = len(problems) - len(errors)
        posted = sum(1 for p in found.posts if found.channels.get(p.path))
        click.echo(
            f"{len(found.posts)} post(s) read, {posted} to be posted: "
            f"{len(errors)} error(s), {warnings} warning(s)",
            err=True,
        )
    if errors or (fatal == "warnings" and problems):
        sys.exit(1)


@click.command("build")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Output folder.")
@click.option(
    "--theme-path",
    "-t",
    "theme",
    help="Theme folder (Pelican's -t); `storyloop` is the theme installed with Storyloop.",
)
@click.option("--fatal", type=click.Choice(["warnings", "errors"]), help="Make these fatal.")
@click.pass_obj
def build_cmd(obj: Any, output: Path | None, theme: str | None, fatal: str | None) -> None:
    """Build the site and the manifest with Pelican (same as plain `pelican`, plugin included).

    \b
    Example:
      storyloop build -o public -t storyloop --fatal warnings
    """
    import pelican

    from publisher import theme_path

    settings: Settings = obj.settings
    argv = [str(settings.content_path), "-s", str(settings.source), "--log-handler", "plain"]
    if output:
        argv += ["-o", str(output)]
    if theme:
        argv += ["-t", theme_path() if theme == "storyloop" and not Path(theme).is_dir() else theme]
    if fatal:
        argv += ["--fatal", fatal]
    try:
        with build_progress():
            pelican.main(argv)
    except SystemExit as exc:
        if exc.code:
            click.secho("error: the build failed (see the messages above)", fg="red", err=True)
            sys.exit(1)
    manifest = (output or settings.output_path) / "storyloop-manifest.json"
    if not manifest.is_file():
        click.echo(f"built the site into {manifest.parent} (the Storyloop plugin is not enabled)")
        return
    count = len(json.loads(manifest.read_text(encoding="utf-8"))["stories"])
    click.echo(f"built {count} stories into {manifest.parent}")


@contextmanager
def build_progress() -> Iterator[None]:
    """A rich progress display of the files Pelican has read and then written, on a terminal
    only (nothing is drawn into a pipe, so CI logs stay as they were). Pelican does not say
    beforehand how many files it will read or write, so these are counts without a total."""
    from pelican import signals
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}: {task.completed} files"))
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        reading = bar.add_task("reading content", total=None)
        writing: list[Any] = []

        def read(_content: Any) -> None:
            bar.advance(reading)

        def finalized(_generators: Any) -> None:
            bar.update(reading, total=bar.tasks[0].completed)
            writing.append(bar.add_task("writing pages", total=None))

        def written(_path: Any, context: Any = None) -> None:
            if writing:
                bar.advance(writing[0])

        signals.content_object_init.connect(read)
        signals.all_generators_finalized.connect(finalized)
        signals.content_written.connect(written)
        try:
            yield
        finally:
            signals.content_object_init.disconnect(read)
            signals.all_generators_finalized.disconnect(finalized)
            signals.content_written.disconnect(written)


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--name", default="My Shop", show_default=True, help="The site's name.")
@click.option("--lang", default="en", show_default=True, help="The site's language: en, zh, de.")
@click.option("--copy-theme", is_flag=True, help="Copy the theme into themes/ to change it.")
def init_cmd(directory: Path, name: str, lang: str, copy_theme: bool) -> None:
    """Write a small new site: settings, one story, one testimonial, the theme.

    \b
    Example:
      storyloop init my-site && cd my-site && storyloop build && storyloop serve
    """
    from publisher.starter import write_site

    written = write_site(directory, name=name, lang=lang, copy_theme=copy_theme)
    for path in written:
        click.echo(f"  wrote {path}")
    click.echo(f"next: cd {directory} && storyloop check && storyloop build && storyloop run")


COMMANDS = [check_cmd, build_cmd, init_cmd]
