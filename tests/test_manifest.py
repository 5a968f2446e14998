"""The manifest is the boundary between the build and the engine: pinned by a golden file and by
its JSON Schema. Regenerate the golden file after a deliberate change with
``STORYLOOP_UPDATE_GOLDEN=1 pytest tests/test_manifest.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from publisher import model
from publisher.manifest import load_manifest
from publisher.model import SCHEMA_PATH, Image, Manifest, OfferRules, Story, Translation

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


SHAPES = {
    "story": Story,
    "translation": Translation,
    "image": Image,
    "testimonial": model.Testimonial,
    "offer_rules": OfferRules,
}


def test_the_schema_and_the_engine_model_name_the_same_fields() -> None:
    """One shape: every object in the schema is a dataclass of publisher.model, field for field,
    and nothing else may appear (a field added to one and not the other fails here)."""
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    assert set(schema["properties"]) == {f.name for f in fields(Manifest)}
    assert set(schema["$defs"]) == set(SHAPES)
    for name, cls in SHAPES.items():
        shape = schema["$defs"][name]
        assert set(shape["properties"]) == {f.name for f in fields(cls)}, name
        assert shape["additionalProperties"] is False, name


def test_the_schema_requires_exactly_what_the_model_always_writes() -> None:
    """A key the schema lets a manifest leave out is one the model writes only when it is set
    (a story's translations and offer rules), so older manifests still read."""
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    stories = load_manifest(GOLDEN).stories
    told = next(s for s in stories if s.testimonial is not None and s.images)
    bare = replace(told, translations=(), offer_rules=None)
    translation = Translation(**{f.name: getattr(told, f.name) for f in fields(Translation)})
    written = {
        "story": bare.to_json(),
        "translation": translation.to_json(),
        "image": bare.to_json()["images"][0],
        "testimonial": bare.to_json()["testimonial"],
        "offer_rules": OfferRules().to_json(),
    }
    for name, data in written.items():
        assert set(schema["$defs"][name]["required"]) == set(data), name
    with_all = replace(told, translations=(translation,), offer_rules=OfferRules()).to_json()
    assert set(with_all) == set(schema["$defs"]["story"]["properties"])
    assert set(schema["required"]) == set(Manifest(1, "https://shop.example", ()).to_json())


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>One</p>\n<p>Two</p>", "One\n\nTwo"),
        ("<p>One</p><p></p><p> </p><p>Two</p>", "One\n\nTwo"),  # empty paragraphs: one gap
        ("<p>A<br>B</p><ul><li>x</li><li>y</li></ul>", "A\nB\n\nx\n\ny"),
        ("<pre>a\n\n\n  b\n  c</pre>", "a\n\nb\nc"),  # its lines kept, not joined
        ("<table><tr><td>1</td><td>2</td></tr></table>", "1 | 2"),
        ("<p>Fish &amp; chips &lt;3</p>", "Fish & chips <3"),
    ],
)
def test_the_manifest_s_plain_text_keeps_paragraphs_apart_by_one_blank_line(
    html: str, text: str
) -> None:
    from publisher.pelican_plugin import plain_text

    assert plain_text(html) == text
