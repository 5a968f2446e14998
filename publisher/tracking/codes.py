"""Link codes (unguessable, for machines) and offer codes (readable aloud, typed by people)."""

from __future__ import annotations

import re
import secrets
import string

LINK_ALPHABET = string.digits + string.ascii_letters
LINK_CODE_LENGTH = 10  # 62**10 ≈ 8e17: not guessable at any request rate a tracker answers
LINK_CODE_RE = re.compile(r"[0-9A-Za-z]{6,32}")

# Without 0/O and 1/I, which people misread and mistype.
OFFER_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
OFFER_BODY_LENGTH = 5
DEFAULT_OFFER_PREFIX = "SL"


def new_link_code() -> str:
    """Ten base-62 digits of one uniform random number: one call to the OS's randomness
    instead of one per character (this runs once per link of every post)."""
    n = secrets.randbelow(len(LINK_ALPHABET) ** LINK_CODE_LENGTH)
    digits = []
    for _ in range(LINK_CODE_LENGTH):
        n, digit = divmod(n, len(LINK_ALPHABET))
        digits.append(LINK_ALPHABET[digit])
    return "".join(digits)


def is_link_code(text: str) -> bool:
    return LINK_CODE_RE.fullmatch(text) is not None


def check_character(body: str) -> str:
    """Luhn mod 32: catches any single wrong character and any swap of two neighbours."""
    n = len(OFFER_ALPHABET)
    total = 0
    factor = 2
    for char in reversed(body):
        addend = factor * OFFER_ALPHABET.index(char)
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return OFFER_ALPHABET[(n - total % n) % n]


def new_offer_code(prefix: str = DEFAULT_OFFER_PREFIX) -> str:
    body = "".join(secrets.choice(OFFER_ALPHABET) for _ in range(OFFER_BODY_LENGTH))
    return f"{prefix}-{body}-{check_character(body)}"


def normalise_offer_code(text: str) -> str | None:
    """The canonical form of a code a person typed (any case, spaces or dashes), or None."""
    compact = re.sub(r"[\s\-_]", "", text.upper())
    if len(compact) < OFFER_BODY_LENGTH + 2:
        return None
    prefix = compact[: -(OFFER_BODY_LENGTH + 1)]
    body, check = compact[-(OFFER_BODY_LENGTH + 1) : -1], compact[-1]
    if not prefix.isalnum() or not prefix.isascii():
        return None
    if any(c not in OFFER_ALPHABET for c in body + check):
        return None
    if check_character(body) != check:
        return None
    return f"{prefix}-{body}-{check}"
