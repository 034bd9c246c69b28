"""ledger: events closed without posting — refunds of orders that ended (returned or cancelled) before completion.

Revision ID: ledger_0008
Revises: ledger_0007
Create Date: 2026-12-02

When the orders service reports an order returned or cancelled and the ledger never saw it completed, no sale was
booked and no cash reached us: the marketplace refunded the buyer from escrow. Its refunds have nothing to reverse;
they are closed here instead of waiting in ``pending_events`` for a completion that never comes. The ending event
itself is kept here too (the ledger remembers that the order ended without completion, so a later refund is closed
on arrival). Append-only like the journal: row triggers refuse UPDATE and DELETE, a statement trigger TRUNCATE, and
the service role keeps only INSERT and SELECT.
"""

from __future__ import annotations

from infra.db.roles import SERVICE
from infra.db.steps import statement_migration

revision = "ledger_0008"
down_revision = "ledger_0007"
branch_labels = None
depends_on = None

S = "ledger"
T = "closed_without_posting"

UP = [
    f"""CREATE TABLE {S}.{T} (
        event_id uuid PRIMARY KEY,
        order_key text NOT NULL,
        event_type text NOT NULL,
        reason text NOT NULL CHECK (btrim(reason) <> ''),
        closed_at timestamptz NOT NULL DEFAULT now())""",
    f"CREATE INDEX {T}_order_idx ON {S}.{T} (order_key)",
    f"""CREATE TRIGGER {T}_immutable BEFORE UPDATE OR DELETE ON {S}.{T}
        FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()""",
    f"""CREATE TRIGGER {T}_no_truncate BEFORE TRUNCATE ON {S}.{T}
        FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_change()""",
    # The default privileges give the service INSERT and SELECT; say so explicitly: nothing else, ever.
    f"REVOKE UPDATE, DELETE, TRUNCATE ON {S}.{T} FROM {SERVICE}",
]

DOWN = [f"DROP TABLE {S}.{T}"]

upgrade, downgrade = statement_migration(UP, DOWN)
