"""ledger: schema and messaging tables (inbox, outbox, dead letters).

Revision ID: ledger_0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

from infra.db.roles import mutable_table_grants, schema_grants
from infra.messaging.ddl import drop_messaging_tables_ddl, messaging_tables_ddl

revision = "ledger_0001"
down_revision = None
branch_labels = ("ledger",)
depends_on = None

SCHEMA = "ledger"


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA {SCHEMA}")
    for statement in [*schema_grants(SCHEMA), *messaging_tables_ddl(SCHEMA)]:
        op.execute(statement)
    # The relay marks outbox rows sent; retried events release their inbox claim.
    for statement in [
        *mutable_table_grants(SCHEMA, "outbox", delete=True),
        *mutable_table_grants(SCHEMA, "inbox", delete=True),
    ]:
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_messaging_tables_ddl(SCHEMA):
        op.execute(statement)
    op.execute(f"DROP SCHEMA {SCHEMA}")
