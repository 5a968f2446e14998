"""Scale: on SQLite, clicks are stored in the order they arrive.

``clicks`` was a WITHOUT ROWID table clustered on the click id, which begins with the link's code,
so each batch of clicks landed all over the table and every transaction rewrote pages across
it (about ten times the data written at 10 M clicks). As an ordinary rowid table its rows are
appended in ingest order; the id keeps its unique index, which is a fraction of the row's size.
PostgreSQL's heap tables already grow in insert order: nothing changes there.

Revision ID: 0004_scale
Revises: 0003_shop
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_scale"
down_revision = "0003_shop"
branch_labels = None
depends_on = None

COLUMNS = (
    "id, code, delivery_id, story, channel, variant, region, at, kind, agent, reader, referrer_host"
)


def _clicks(name: str, **kw: bool) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("story", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(50)),
        sa.Column("region", sa.String(100)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("agent", sa.String(50)),
        sa.Column("reader", sa.String(32)),
        sa.Column("referrer_host", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_clicks"),
        **kw,
    )


def _rebuild(**kw: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _clicks("clicks_rebuilt", **kw)
    op.execute(f"INSERT INTO clicks_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM clicks ORDER BY at")
    op.drop_table("clicks")
    op.rename_table("clicks_rebuilt", "clicks")


def upgrade() -> None:
    _rebuild()


def downgrade() -> None:
    _rebuild(sqlite_with_rowid=False)
