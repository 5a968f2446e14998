"""The table of testimonials that arrived through an invitation (migration ``0007_customers``).

One row per invitation: the invitation's id is the primary key, so a link is used once even
with two submissions at the same moment. No contact data is kept, only what the customer wrote,
the consent they gave (with the exact text shown and its version) and the visit it came from.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, Integer, String, Table, Text

from publisher.db import UTCDateTime, metadata

testimonials = Table(
    "testimonials",
    metadata,
    Column("invite", String(40), primary_key=True),
    Column("store", String(100), nullable=False),
    Column("visited_on", Date, nullable=False),
    Column("lang", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("rating", Integer, nullable=False),
    Column("display_name", String(100), nullable=False),
    Column("photos", Text, nullable=False),  # JSON list of paths under var/testimonials/
    Column("consent_scope", String(30), nullable=False),  # site | site, social, newsletter
    Column("consent_until", Date),  # None: until withdrawn
    Column("consent_version", String(20), nullable=False),
    Column("consent_text", Text, nullable=False),
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("pulled_at", UTCDateTime),
    Column("pulled_branch", String(200)),
)
