"""orders: schema and messaging tables (inbox, outbox, dead letters).

Revision ID: orders_0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from infra.db.steps import drop_service_schema_ddl, service_schema_ddl, statement_migration

revision = "orders_0001"
down_revision = None
branch_labels = ("orders",)


upgrade, downgrade = statement_migration(service_schema_ddl("orders"), drop_service_schema_ddl("orders"))
