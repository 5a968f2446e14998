"""The engine's exception tree. The CLI turns these into one line and an exit code.

StoryloopError
 ├── SettingsError        pelicanconf.py / STORYLOOP settings are wrong
 ├── ManifestError        the manifest is missing or does not match its schema
 ├── NotFound             an id, code or story the user named does not exist
 ├── ChannelError         a channel failed; its own tree in :mod:`channels.base`, and the
 │                        transport failures under it mapped by class in :mod:`channels.http`
 ├── ChannelNotFound      (also a LookupError) no installed channel has that name
 └── …                    each module's own (AccountError, PosterError, InvalidConversion, …)

This module imports nothing of the project, so every layer (channels included) can share it.
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
