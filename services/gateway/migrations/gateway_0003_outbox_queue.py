"""gateway: the outbox is a queue — the relay deletes what Kafka acknowledged (see ``outbox_as_queue_ddl``).

Revision ID: gateway_0003
Revises: gateway_0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from infra.db.steps import statement_migration
from infra.messaging.ddl import outbox_as_log_ddl, outbox_as_queue_ddl

revision = "gateway_0003"
down_revision = "gateway_0002"


upgrade, downgrade = statement_migration(outbox_as_queue_ddl("gateway"), outbox_as_log_ddl("gateway"))
