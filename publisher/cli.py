"""The ``storyloop`` command. Each area adds its commands from ``publisher.commands.<area>``.

Domain errors become one clear line on stderr and exit code 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from publisher import settings as settings_mod
from publisher.errors import StoryloopError

COMMAND_MODULES = ("site", "channels", "engine", "tracking", "web", "customers")


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


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoryloopError as exc:
            if ctx.obj is not None and getattr(ctx.obj, "debug", False):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=Group)
@click.option("--config", "-c", envvar="STORYLOOP_SETTINGS", help="Settings file (pelicanconf.py).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--verbose", "-v", is_flag=True, help="Log progress, not only problems.")
@click.version_option(package_name="storyloop")
@click.pass_context
def main(ctx: click.Context, config: str | None, debug: bool, verbose: bool) -> None:
    """Storyloop: publish stories everywhere your customers are, and measure what brings them in."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config, debug)


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"publisher.commands.{_name}").COMMANDS:
        main.add_command(_command)
