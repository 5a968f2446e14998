"""The private withdrawal link each customer gets after sending a testimonial.

Signed with itsdangerous like the invitation, under a key of its own, and with no expiry: consent
may be withdrawn for as long as the testimonial is shown. The link is kept in
``withdrawal_links`` so the owner can send it again (``storyloop consent links``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from publisher.consent.schema import withdrawal_links

SALT = "storyloop consent withdrawal"
PATH = "/withdraw/"


def secret_for(session_secret: str) -> str:
    """The withdrawal links' own key, derived so it differs from the session's and invitations'."""
    return hmac.new(session_secret.encode(), b"storyloop withdrawals", hashlib.sha256).hexdigest()


def make(secret: str, invite: str) -> str:
    return str(URLSafeSerializer(secret, salt=SALT).dumps({"w": invite}))


def read(secret: str, token: str) -> str | None:
    """The invitation id the token was made for, or None (forged or altered)."""
    if len(token) > 300:
        return None
    try:
        data = URLSafeSerializer(secret, salt=SALT).loads(token)
        return str(data["w"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def remember(engine: Engine, invite: str, token: str, now: datetime) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(withdrawal_links).values(invite=invite, token=token, created_at=now)
            )
    except IntegrityError:
        pass  # kept already: the same invitation always gives the same link


def stored(engine: Engine) -> dict[str, str]:
    """Every kept link's token, by invitation id."""
    c = withdrawal_links.c
    with engine.connect() as conn:
        return {row.invite: row.token for row in conn.execute(select(c.invite, c.token))}
