"""orders: find the orders waiting for stock without reading every order.

Each batch that frees stock (a cancellation, an expired hold, a restock) looks for the orders waiting for those
SKUs (``services.orders.adapters.locks.LOCK_WAITING_SQL``). Without an index that was a sequential scan of
``orders`` (or of ``order_lines``) per call: ~17 ms at 100k orders, growing with every order ever taken. The
index holds only the orders whose reservation failed and was not filled since (those waiting, and those cancelled
while waiting): few beside all orders. Its predicate references no column a normal state change updates (only
``reservation_failed_reason``, set when a reservation fails and cleared when it is filled), so those updates stay
HOT; a predicate on ``stock_stage`` would have made most of them non-HOT.

Revision ID: orders_0008
Revises: orders_0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "orders_0008"
down_revision = "orders_0007"
branch_labels = None
depends_on = None

upgrade, downgrade = statement_migration(
    ["CREATE INDEX orders_waiting_idx ON orders.orders (order_key) WHERE reservation_failed_reason IS NOT NULL"],
    ["DROP INDEX orders.orders_waiting_idx"],
)
