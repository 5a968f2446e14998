"""Shop: accounts, personal codes, redemption counts and requests; conversions learn how the
customer came (via), which kind of code, who recorded it and any warning.

Revision ID: 0003_shop
Revises: 0002_tracking
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_shop"
down_revision = "0002_tracking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("store", sa.String(100)),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_accounts"),
    )
    op.create_table(
        "personal_codes",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("offer_story", sa.String(200), nullable=False),
        sa.Column("offer", sa.Text(), nullable=False),
        sa.Column("reader", sa.String(64), nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("click_id", sa.String(64)),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50)),
        sa.Column("region", sa.String(100)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_personal_codes"),
        sa.UniqueConstraint("offer_story", "reader", name="uq_personal_codes_offer_story_reader"),
    )
    op.create_index(
        "ix_personal_codes_group", "personal_codes", ["story", "channel", "variant", "region"]
    )
    op.create_table(
        "redemption_counts",
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_redemption_counts"),
    )
    op.create_table(
        "redemption_requests",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("store", sa.String(100), nullable=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("request_id", name="pk_redemption_requests"),
    )
    with op.batch_alter_table("conversions") as batch:
        batch.add_column(sa.Column("via", sa.String(8)))
        batch.add_column(sa.Column("code_kind", sa.String(10)))
        batch.add_column(sa.Column("account", sa.String(100)))
        batch.add_column(sa.Column("warning", sa.String(200)))
    conversions = sa.table(
        "conversions",
        sa.column("via"),
        sa.column("click_id"),
        sa.column("code_kind"),
        sa.column("kind"),
    )
    op.execute(
        conversions.update().values(
            via=sa.case((conversions.c.click_id.is_(None), "code"), else_="link")
        )
    )
    op.execute(
        conversions.update().where(conversions.c.kind == "redemption").values(code_kind="shared")
    )
    # what a redemption counted before limits existed, so a limit set later counts them too
    op.execute(
        "INSERT INTO redemption_counts (scope, key, uses) "
        "SELECT 'code', offer_code, COUNT(*) FROM conversions "
        "WHERE kind = 'redemption' AND offer_code IS NOT NULL GROUP BY offer_code"
    )
    op.execute(
        "INSERT INTO redemption_counts (scope, key, uses) "
        "SELECT 'offer', story, COUNT(*) FROM conversions "
        "WHERE kind = 'redemption' GROUP BY story"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversions") as batch:
        for column in ("warning", "account", "code_kind", "via"):
            batch.drop_column(column)
    for table in ("redemption_requests", "redemption_counts", "personal_codes", "accounts"):
        op.drop_table(table)
