"""orders: the outbox is a queue — the relay deletes what Kafka acknowledged (see ``outbox_as_queue_ddl``).

Revision ID: orders_0003
Revises: orders_0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from infra.db.steps import statement_migration
from infra.messaging.ddl import outbox_as_log_ddl, outbox_as_queue_ddl

revision = "orders_0003"
down_revision = "orders_0002"


upgrade, downgrade = statement_migration(outbox_as_queue_ddl("orders"), outbox_as_log_ddl("orders"))
