from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from publisher.settings import Secret
from publisher.tracking import optout

KEY = Secret("k" * 32, "STORYLOOP_SIGNING_KEY")


def test_a_token_gives_back_the_lower_case_address() -> None:
    token = optout.make_token("Li.Wei@Example.CN", KEY)
    assert optout.read_token(token, KEY) == "li.wei@example.cn"
    assert "@" not in token and "example" not in token.lower()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: optout.make_token("other@example.cn", KEY).split(".")[0] + "." + t.split(".")[1],
        lambda t: t.replace(".", ""),
        lambda t: "",
        lambda t: "é.é",
        lambda t: t + "." + t,
    ],
)
def test_a_tampered_token_is_refused(mangle: Callable[[str], str]) -> None:
    token = optout.make_token("li.wei@example.cn", KEY)
    assert optout.read_token(mangle(token), KEY) is None


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = optout.make_token("li.wei@example.cn", Secret("another key"))
    assert optout.read_token(token, KEY) is None


def test_without_a_key_the_development_key_is_used_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    optout._warned = False
    with caplog.at_level(logging.WARNING):
        token = optout.make_token("a@example.cn", None)
        optout.make_token("b@example.cn", None)
    assert optout.read_token(token, None) == "a@example.cn"
    assert len([r for r in caplog.records if "signing key" in r.message]) == 1
