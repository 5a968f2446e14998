"""Storyloop's engine: content model, Pelican plugin, plan, ledger, scheduler, tracking, reports."""

from pathlib import Path

__version__ = "0.1.0"


def theme_path() -> str:
    """The folder of the Storyloop theme installed with the package, for Pelican's ``THEME``
    (``from publisher import theme_path; THEME = theme_path()``). In a checkout it is the
    repository's ``themes/storyloop``, which ``publisher/theme`` links to."""
    return str(Path(__file__).resolve().parent / "theme")
