"""The owner's locale: each account may say how its money, dates and labels are written
(``de_DE``, ``zh_TW``, ``en_US``) and in which time zone it reads times. Both are optional; an
account without them reads the page's language and the site's time zone.

Revision ID: 0012_owner
Revises: 0007_customers
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_owner"
down_revision = "0011_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("locale", sa.String(20)))
    op.add_column("accounts", sa.Column("timezone", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("timezone")
        batch.drop_column("locale")
