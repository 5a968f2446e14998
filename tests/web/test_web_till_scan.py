"""The till's camera button in Chromium: the page asks the browser's BarcodeDetector, fills in
the code it read and sends the form. Chromium's fake camera stands in for a phone's, and a
stand-in detector for the platform's (Linux builds have none); the till's own script is real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.tracking.trackkit import Site, Tracker
from tests.web.shopkit import PASSWORD, Browser, add_user, offer_story, open_shop, write_manifest

pytestmark = pytest.mark.browser

DETECTOR = """
window.BarcodeDetector = class {
  constructor(options) { window.__formats = options.formats; }
  detect(source) { return Promise.resolve(source.readyState >= 2 ? [{rawValue: %r}] : []); }
};
"""


def test_scanning_a_code_with_the_camera_opens_its_check_page(
    tmp_path: Path, playwright: Any, chromium_path: str, serve: Callable[[Site], Tracker]
) -> None:
    root = tmp_path / "site"
    site = open_shop(root, f"sqlite:///{root / 'var' / 'db.sqlite'}")
    write_manifest(site, offer_story("floor", "berlin"))
    add_user(site, "mia", "staff", "berlin-1")
    serve(site)
    code = Browser.open(site).claim("floor")
    args = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    chromium = playwright.chromium.launch(executable_path=chromium_path, args=args)
    try:
        context = chromium.new_context(viewport={"width": 390, "height": 844})
        context.grant_permissions(["camera"])
        context.add_init_script(DETECTOR % code)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"http://127.0.0.1:{site.port}/login?next=/till")
        page.get_by_label("Name").fill("mia")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/till")
        page.get_by_role("button", name="Mit der Kamera scannen").click()
        page.wait_for_url("**/till/check")
        assert page.get_by_text("Gültig hier und jetzt").is_visible()
        assert page.locator("h1.big-code").inner_text() == code
        assert page.evaluate("window.__formats") is None  # a new page: the scan is done
        assert errors == []
    finally:
        chromium.close()
    site.engine.dispose()
