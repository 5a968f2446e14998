"""The ``storyloop`` command. Each area adds its commands from ``publisher.commands.<area>``.

Domain errors become one clear line on stderr and exit code 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from publisher import settings as settings_mod
from publisher.errors import StoryloopError

COMMAND_MODULES = ("site", "channels", "engine", "tracking", "web", "customers", "consent")


class Context:
    def __init__(self, config: str | None, debug: bool) -> None:
        self.config = config
        self.debug = debug
        self._settings: settings_mod.Settings | None = None

    @property
    def settings(self) -> settings_mod.Settings:
        if self._settings is None:
            self._settings = settings_mod.load(self.config)
        return self._settings


@contextlib.contextmanager
def busy(what: str) -> Iterator[None]:
    """A spinner with ``what`` on stderr while a long command works, on a terminal only (rich
    draws nothing into a pipe or a CI log)."""
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(what):
        yield


Progress = Callable[[int, int], None]


@contextlib.contextmanager
def progress(what: str, unit: str) -> Iterator[Progress | None]:
    """A rich progress bar on stderr for a long command: the command passes the callback it
    yields to the library, which calls it per batch with (done, total). On a pipe or in a CI log
    it yields None and nothing is drawn."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = [TextColumn("{task.description}"), BarColumn()]
    if unit == "bytes":
        columns.append(DownloadColumn())
    else:
        columns += [MofNCompleteColumn(), TextColumn(unit)]
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoryloopError as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except OperationalError as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            click.secho(f"error: {database_problem(exc)}", fg="red", err=True)
            sys.exit(1)


def database_problem(exc: OperationalError) -> str:
    """One line for a database that refused: locked by another writer, unreachable, ..."""
    from publisher.db import busy_seconds

    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
    if "database is locked" in reason:
        return (
            f"the database is locked by another process (waited {busy_seconds():g} s): nothing "
            "was changed; try again when it is done (STORYLOOP_DB_BUSY_SECONDS sets the wait)"
        )
    return f"the database refused: {reason[:200]}"


@click.group(cls=Group)
@click.option("--config", "-c", envvar="STORYLOOP_SETTINGS", help="Settings file (pelicanconf.py).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--verbose", "-v", is_flag=True, help="Log progress, not only problems.")
@click.version_option(package_name="storyloop")
@click.pass_context
def main(ctx: click.Context, config: str | None, debug: bool, verbose: bool) -> None:
    """Storyloop: publish stories everywhere your customers are, and measure what brings them in.

    \b
    Example:
      storyloop init my-site && cd my-site && storyloop check && storyloop build
    """
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config, debug)


# An example for the --help of every command whose own docstring shows none (`storyloop check`
# and its neighbours carry theirs); tests/test_adopt.py fails for a command without one.
EXAMPLES = {
    "cancel": "storyloop cancel 3f9c2a7e01",
    "channels": "storyloop channels",
    "consent": "storyloop consent     # ended consents, and what each copy became",
    "consent list": "storyloop consent list",
    "consent sweep": "storyloop consent sweep",
    "consent withdraw": 'storyloop consent withdraw berlin-sabine-bathroom --how "by phone"',
    "consent done": "storyloop consent done 3f9c2a7e01",
    "consent links": "storyloop consent links",
    "db": "storyloop db upgrade",
    "digest": "storyloop digest --to owner@example.com",
    "db upgrade": "storyloop db upgrade",
    "import-sales": "storyloop import-sales till-2026-11.csv",
    "ingest": "storyloop ingest",
    "links": "storyloop links xiamen-tea-room",
    "metrics": "storyloop metrics",
    "plan": "storyloop plan            # what would go out, nothing written\n"
    "  storyloop plan --apply    # write it to the ledger",
    "poster": "storyloop poster xiamen-tea-room",
    "preview": "storyloop preview xiamen-tea-room --channel weibo",
    "publish": "storyloop publish --due --dry-run",
    "redeem": "storyloop redeem K7QX-M2PA --value 299 --store xiamen-1",
    "report": "storyloop report --by story,channel --since 2026-11-01 --format csv",
    "resolve": "storyloop resolve 3f9c2a7e01 --sent https://mastodon.social/@shop/1",
    "resume": "storyloop resume mastodon",
    "retry": "storyloop retry 3f9c2a7e01",
    "run": "storyloop run --no-serve",
    "serve": "storyloop serve",
    "status": "storyloop status",
    "testimonials": "storyloop testimonials          # what customers sent\n"
    "  storyloop testimonials pull     # onto a new git branch, for a pull request",
    "testimonials pull": "storyloop testimonials pull",
    "user": "storyloop user add mia --role staff --store berlin-1",
    "user add": "storyloop user add mia --role staff --store berlin-1",
    "user list": "storyloop user list",
    "user remove": "storyloop user remove mia",
    "user passwd": "storyloop user passwd mia",
    "user set": "storyloop user set lena --locale de_DE --timezone Europe/Berlin",
}


def add_example(command: click.Command, path: str) -> None:
    example = EXAMPLES.get(path)
    if example and "Example" not in (command.help or "") and not command.epilog:
        command.epilog = f"\b\nExample:\n  {example}"
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            add_example(sub, f"{path} {name}")


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"publisher.commands.{_name}").COMMANDS:
        add_example(_command, str(_command.name))
        main.add_command(_command)
