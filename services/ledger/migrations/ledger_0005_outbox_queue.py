"""ledger: the outbox is a queue — the relay deletes what Kafka acknowledged (see ``outbox_as_queue_ddl``).

Revision ID: ledger_0005
Revises: ledger_0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from infra.db.steps import statement_migration
from infra.messaging.ddl import outbox_as_log_ddl, outbox_as_queue_ddl

revision = "ledger_0005"
down_revision = "ledger_0004"


upgrade, downgrade = statement_migration(outbox_as_queue_ddl("ledger"), outbox_as_log_ddl("ledger"))
