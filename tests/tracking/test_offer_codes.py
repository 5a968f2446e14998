from __future__ import annotations

import itertools

from publisher.tracking.codes import (
    OFFER_ALPHABET,
    check_character,
    new_offer_code,
    normalise_offer_code,
)


def test_a_typed_code_is_accepted_in_any_case_and_spacing() -> None:
    code = new_offer_code("CC")
    assert normalise_offer_code(code.lower().replace("-", " ")) == code
    assert normalise_offer_code(code.replace("-", "")) == code


def test_every_single_wrong_character_is_caught() -> None:
    body = "7KQ4W"
    check = check_character(body)
    for position, replacement in itertools.product(range(5), OFFER_ALPHABET):
        if body[position] == replacement:
            continue
        typo = body[:position] + replacement + body[position + 1 :]
        assert normalise_offer_code(f"CC-{typo}-{check}") is None


def test_every_swap_of_two_neighbours_is_caught() -> None:
    for body in ("7KQ4W", "ABCDE", "23456", "Z9Y8X"):
        check = check_character(body)
        for i in range(4):
            swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
            if swapped != body:
                assert normalise_offer_code(f"CC-{swapped}-{check}") is None


def test_confusable_characters_are_rejected() -> None:
    assert normalise_offer_code("CC-0O1I2-A") is None
    assert normalise_offer_code("") is None
    assert normalise_offer_code("CC-ABC") is None
