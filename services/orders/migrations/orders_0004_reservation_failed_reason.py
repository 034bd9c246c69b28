"""orders: keep why an order got no stock (the ``reservation_failed`` reason), so ``karya orders show`` can say it.

Revision ID: orders_0004
Revises: orders_0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "orders_0004"
down_revision = "orders_0003"


upgrade, downgrade = statement_migration(
    ["ALTER TABLE orders.orders ADD COLUMN reservation_failed_reason text"],
    ["ALTER TABLE orders.orders DROP COLUMN reservation_failed_reason"],
)
