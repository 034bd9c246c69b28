"""orders: schema and messaging tables (inbox, outbox, dead letters).

Revision ID: orders_0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from infra.db.steps import drop_service_schema_ddl, run_statements, service_schema_ddl

revision = "orders_0001"
down_revision = None
branch_labels = ("orders",)


def upgrade() -> None:
    run_statements(service_schema_ddl("orders"))


def downgrade() -> None:
    run_statements(drop_service_schema_ddl("orders"))
