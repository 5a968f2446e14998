"""The manifest is the boundary between the build and the engine: pinned by a golden file and by
its JSON Schema. Regenerate the golden file after a deliberate change with
``STORYLOOP_UPDATE_GOLDEN=1 pytest tests/test_manifest.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from publisher.manifest import load_manifest
from publisher.model import SCHEMA_PATH

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "manifest.json"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("site")
    storyloop = Path(sys.executable).with_name("storyloop")
    done = subprocess.run(
        [str(storyloop), "build", "--output", str(out), "--fatal", "warnings"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data: dict[str, Any] = json.loads((out / "storyloop-manifest.json").read_text("utf-8"))
    return data


def test_sample_manifest_matches_the_golden_file(manifest: dict[str, Any]) -> None:
    if os.environ.get("STORYLOOP_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    assert manifest == json.loads(GOLDEN.read_text("utf-8"))


def test_sample_manifest_is_valid_against_its_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(manifest, schema, format_checker=jsonschema.FormatChecker())


def test_sample_content_is_rich_enough_to_show_every_feature(manifest: dict[str, Any]) -> None:
    stories = manifest["stories"]
    testimonials = [s for s in stories if s["category"] == "testimonials"]
    assert len(stories) >= 12 and len(testimonials) >= 4
    assert {s["lang"] for s in stories} >= {"zh", "en"}
    assert any(s["variants"] for s in stories) and any(s["offer"] for s in stories)
    assert any(s["overrides"] for s in stories)
    assert all(s["images"] and s["images"][0]["alt"] for s in stories)


def test_manifest_round_trips_through_the_engine_model(manifest: dict[str, Any]) -> None:
    path = GOLDEN
    loaded = load_manifest(path)
    assert [s.slug for s in loaded.stories] == [s["slug"] for s in manifest["stories"]]
    assert loaded.to_json() == json.loads(path.read_text("utf-8"))
    for story in loaded.stories:
        assert story.publish_at.tzinfo is not None
        assert story.headline(None) == story.title
