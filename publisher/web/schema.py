"""Tables the web layer owns, declared on :data:`publisher.db.metadata`.

Their shape in the database comes from migrations ``0003_shop`` and ``0012_owner`` (the
account's locale and time zone); keep both in step.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table

from publisher.db import UTCDateTime, metadata

accounts = Table(
    "accounts",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(10), nullable=False),  # owner | staff
    Column("store", String(100)),  # staff only: the one store they see
    Column("password_hash", String(200), nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    # Bumped when the password changes: sessions signed for an older version end.
    Column("session_version", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime, nullable=False),
    # How this person reads figures: a Babel locale (de_DE) and an IANA zone; NULL: the defaults.
    Column("locale", String(20)),
    Column("timezone", String(64)),
)
