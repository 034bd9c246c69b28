"""orders: stock reconciliation items, append-only — what a person's allocation could not record in stock.

When the ledger announces a person's allocation of an order (``karya.ledger.order_allocated_by_person.v1``), the
orders service records the units as consumed from the named batches, never more than a batch has free. What it
could not record (a batch with fewer free units, a batch or order it does not know, an order that already holds
other batches) is one row here, for a person to reconcile: the order, the batch (``*`` for the order as a whole),
the units wanted and recorded, and why. One row per (announcement, batch), so a redelivery adds nothing.

Revision ID: orders_0007
Revises: orders_0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "orders_0007"
down_revision = "orders_0006"
branch_labels = None
depends_on = None

upgrade, downgrade = statement_migration(
    [
        """CREATE TABLE orders.stock_reconciliation (
        source_event uuid NOT NULL, order_key text NOT NULL, batch_id text NOT NULL,
        wanted integer NOT NULL CHECK (wanted >= 0), recorded integer NOT NULL CHECK (recorded >= 0),
        reason text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source_event, batch_id), CHECK (recorded <= wanted))""",
        "CREATE INDEX stock_reconciliation_order_idx ON orders.stock_reconciliation (order_key)",
    ],
    ["DROP TABLE orders.stock_reconciliation"],
)
