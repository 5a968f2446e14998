"""The project's errors have one root, StoryloopError, so the CLI and the engine name them in
one clean line; channels' errors and transport failures included."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import channels
import publisher
from publisher.errors import StoryloopError

ROOTS = [Path(publisher.__file__).parent, Path(channels.__file__).parent]


def exception_classes() -> list[type[Exception]]:
    """Every Exception class defined at the top of a module of ``publisher`` or ``channels`` (a
    SystemExit such as the build's ContentInvalid is an exit, not an error)."""
    found = []
    for root in ROOTS:
        for path in sorted(root.rglob("*.py")):
            if "migrations" in path.parts or path.name == "__main__.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
            if not names:
                continue
            parts = path.relative_to(root.parent).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            loaded = importlib.import_module(module)
            for name in names:
                cls = getattr(loaded, name)
                if isinstance(cls, type) and issubclass(cls, Exception):
                    found.append(cls)
    return found


def test_every_error_of_the_project_is_a_storyloop_error() -> None:
    classes = exception_classes()
    names = {c.__name__ for c in classes}
    assert {"ChannelError", "RateLimited", "ChannelNotFound", "SettingsError"} <= names
    assert [c.__qualname__ for c in classes if not issubclass(c, StoryloopError)] == []
