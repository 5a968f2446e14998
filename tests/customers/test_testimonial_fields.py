"""``storyloop check`` knows the fields ``storyloop testimonials pull`` writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_content import GOOD_TESTIMONIAL, Site, only

PULLED = GOOD_TESTIMONIAL | {
    "Consent-Scope": "site, social, newsletter",
    "Consent-Version": "2026-12-01",
    "Verified": "xiamen-1 2026-11-30",
}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def test_a_pulled_testimonial_has_no_problems(site: Site) -> None:
    site.write("lin.md", PULLED)
    result = site.check()
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s)" in result.output


def test_an_unknown_consent_scope_is_an_error(site: Site) -> None:
    site.write("lin.md", PULLED | {"Consent-Scope": "everywhere"})
    problem = only(site.problems(), "Consent-Scope")
    assert problem["severity"] == "error" and "'everywhere' is not a scope" in str(
        problem["message"]
    )
    assert problem["expected"] == "site or site, social, newsletter"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("xiamen-1 yesterday", "cannot read 'xiamen-1 yesterday'"),
        ("berlin-1 2026-11-30", "visit at 'berlin-1' but Store is 'xiamen-1'"),
    ],
)
def test_a_bad_verified_line_is_an_error(site: Site, value: str, message: str) -> None:
    site.write("lin.md", PULLED | {"Verified": value})
    problem = only(site.problems(), "Verified")
    assert message in str(problem["message"]) and problem["severity"] == "error"
