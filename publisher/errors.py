"""The engine's exception tree. The CLI turns these into one line and an exit code.

StoryloopError
 ├── SettingsError        pelicanconf.py / STORYLOOP settings are wrong
 ├── ManifestError        the manifest is missing or does not match its schema
 └── NotFound             an id, code or story the user named does not exist
Channel failures have their own tree in :mod:`channels.base`.
"""

from __future__ import annotations


class StoryloopError(Exception):
    """Base of every error the CLI reports as one clean line."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} (hint: {self.hint})" if self.hint else text


class SettingsError(StoryloopError):
    """The settings are missing, malformed or inconsistent."""


class ManifestError(StoryloopError):
    """The build manifest is missing or malformed."""


class NotFound(StoryloopError):
    """Something the user named does not exist."""
