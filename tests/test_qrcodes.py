"""QR codes drawn for the site: in-process for a few, by a child process for many."""

from __future__ import annotations

import base64

import pytest

from publisher import qrcodes

URLS = [f"http://127.0.0.1:8000/stories/s{i}.html" for i in range(qrcodes.CHILD_THRESHOLD)]


def svg_of(data_uri: str) -> str:
    return base64.b64decode(data_uri.removeprefix("data:image/svg+xml;base64,")).decode()


@pytest.mark.parametrize("count", [3, len(URLS)], ids=["in-process", "child"])
def test_codes_are_the_same_however_they_are_drawn(count: int) -> None:
    codes = qrcodes.Codes(None)
    for url in URLS[:count]:
        codes.add(url)
    assert (codes.child is not None) == (count >= qrcodes.CHILD_THRESHOLD)
    for url in URLS[:count]:
        assert svg_of(codes.data_uri(url)) == qrcodes.svg(url)
    codes.finish(URLS[:count])


def test_a_child_that_fails_says_why() -> None:
    codes = qrcodes.Codes(None)
    too_long = "http://127.0.0.1:8000/" + "a" * 5000  # beyond what any QR code holds
    for url in [*URLS[:-1], too_long]:
        codes.add(url)
    assert codes.child is not None
    with pytest.raises(RuntimeError, match=r"(?s)drawing QR codes failed:.*DataOverflowError"):
        codes.data_uri(URLS[0])
