"""Reading the build manifest into the model of :mod:`publisher.model`, or one clear error."""

from __future__ import annotations

import json
from pathlib import Path

from publisher.errors import ManifestError
from publisher.model import MANIFEST_VERSION, Manifest, Story

__all__ = ["load_manifest"]


def load_manifest(path: str | Path) -> Manifest:
    """Read a manifest written by the Pelican plugin."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(f"{p}: no manifest", hint="run `storyloop build` first") from exc
    except OSError as exc:
        raise ManifestError(f"{p}: cannot be read: {exc.strerror}") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:  # e.g. cut short in the middle of a character
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ManifestError(f"{p}:{line}: not UTF-8 at byte {exc.start} (cut short?)") from exc
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{p}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise ManifestError(f"{p}: not a manifest: JSON nested too deeply") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{p}: not a manifest: the JSON is not an object")
    if data.get("version") != MANIFEST_VERSION:
        raise ManifestError(
            f"{p}: manifest version {data.get('version')!r} (expected {MANIFEST_VERSION})",
            hint="rebuild the site with this version of storyloop",
        )
    try:
        stories = tuple(Story.from_json(s) for s in data["stories"])
        return Manifest(version=data["version"], site_url=str(data["site_url"]), stories=stories)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ManifestError(f"{p}: malformed story entry: {exc!r}") from exc
