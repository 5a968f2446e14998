"""``storyloop check`` keeps a testimonial agreed for this website only off every channel."""

from __future__ import annotations

from pathlib import Path

from tests.customers.test_testimonial_fields import PULLED
from tests.test_content import Site, only


def test_a_website_only_testimonial_routed_to_a_channel_is_an_error(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.write("lin.md", PULLED | {"Consent-Scope": "site", "Channels": "mastodon"})
    problem = only(site.problems(), "Channels")
    assert problem["severity"] == "error"
    assert "agreed to this website only" in str(problem["message"])


def test_a_website_only_testimonial_without_channels_passes(tmp_path: Path) -> None:
    site = Site(tmp_path)
    site.write(
        "lin.md", {k: v for k, v in PULLED.items() if k != "Channels"} | {"Consent-Scope": "site"}
    )
    result = site.check()
    assert result.exit_code == 0, result.output
