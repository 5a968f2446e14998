"""The migrations and the declared tables say the same: upgraded to head, the database has every
table, column, index and type of ``publisher.db.metadata`` (Alembic's own comparison finds nothing
to change), and the whole chain downgrades to an empty database. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import publisher.consent.schema
import publisher.customers.schema
import publisher.ledger.schema
import publisher.shop.schema
import publisher.state
import publisher.tracking.referrals
import publisher.tracking.schema
import publisher.web.schema
from publisher import db

DECLARING = (  # every module that declares tables on db.metadata
    publisher.consent.schema,
    publisher.customers.schema,
    publisher.ledger.schema,
    publisher.shop.schema,
    publisher.state,
    publisher.tracking.referrals,
    publisher.tracking.schema,
    publisher.web.schema,
)


def test_head_matches_the_declared_tables_and_the_chain_goes_back_down(db_url: str) -> None:
    engine = db.connect(db_url)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == []
        command.downgrade(db.alembic_config(engine), "base")
        left = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
        assert left == set()
    finally:
        engine.dispose()
