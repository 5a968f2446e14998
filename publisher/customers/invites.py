"""Invitations: a signed, single-use link tied to one sale (store and date), with no contact data.

The link carries ``{store, date, id}`` signed with itsdangerous (the library Starlette's sessions
already use). The id is an HMAC of the sale's identity (store + receipt), so showing the
confirmation again for the same sale gives the same link, and the receipt number never leaves
the shop. The form stores its answer under that id: a second answer is refused by the database.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "storyloop testimonial invitation"
VALID_FOR = timedelta(days=60)
PATH = "/testimonial/"


@dataclass(frozen=True)
class Invitation:
    id: str
    store: str
    visited: date


def secret_for(session_secret: str) -> str:
    """The invitations' own key, derived so it differs from the session cookie's."""
    return hmac.new(session_secret.encode(), b"storyloop invitations", hashlib.sha256).hexdigest()


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def invitation_id(secret: str, sale_key: str) -> str:
    return hmac.new(secret.encode(), sale_key.encode(), hashlib.sha256).hexdigest()[:32]


def make(secret: str, store: str, sale_key: str, visited: date) -> str:
    """The token for the sale ``sale_key`` (e.g. ``shop:berlin-1:R-1001``) on ``visited``."""
    payload = {"s": store, "d": visited.isoformat(), "i": invitation_id(secret, sale_key)}
    return str(_serializer(secret).dumps(payload))


def read(secret: str, token: str) -> Invitation | None:
    """The invitation a token stands for, or None (forged, altered or older than VALID_FOR)."""
    if len(token) > 400:
        return None
    try:
        data = _serializer(secret).loads(token, max_age=int(VALID_FOR.total_seconds()))
        return Invitation(str(data["i"]), str(data["s"]), date.fromisoformat(str(data["d"])))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
