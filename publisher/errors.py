"""The engine's exception tree. The CLI turns these into one line and an exit code.

StoryloopError           defined in :mod:`channels.contract` and re-exported here: the very
 │                        same class, so ``except StoryloopError`` catches a channel's errors
 ├── SettingsError        pelicanconf.py / STORYLOOP settings are wrong
 ├── ManifestError        the manifest is missing or does not match its schema
 ├── NotFound             an id, code or story the user named does not exist
 ├── ChannelError         a channel failed; its own tree in :mod:`channels.contract`, and the
 │                        transport failures under it mapped by class in :mod:`channels.http`
 ├── ChannelNotFound      (also a LookupError) no installed channel has that name
 └── …                    each module's own (AccountError, PosterError, InvalidConversion, …)

The root lives in the contract module because channels may not import the engine (an
import-linter contract in ``pyproject.toml``); this module imports only that one, which imports
nothing of the project.
"""

from __future__ import annotations

from channels.contract import StoryloopError

__all__ = ["ManifestError", "NotFound", "SettingsError", "StoryloopError"]


class SettingsError(StoryloopError):
    """The settings are missing, malformed or inconsistent."""


class ManifestError(StoryloopError):
    """The build manifest is missing or malformed."""


class NotFound(StoryloopError):
    """Something the user named does not exist."""
