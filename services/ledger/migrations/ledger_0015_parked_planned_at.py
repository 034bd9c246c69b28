"""ledger: when each parked event was last planned (``pending_events.planned_at``).

A posting batch takes the events parked for its orders, plans them again and parks again what still waits. Two
things change with this revision:

- ``received_at`` now keeps when the event first arrived across those re-plannings (it was reset each time, so the
  parked gauges and ``karya ledger pending`` showed the age since the order's last event, not the event's);
- ``planned_at`` says when it was last planned. The ledger's re-drive (:mod:`services.ledger.redrive`) re-plans the
  events not planned for a while: one parked while its order's completion posted in another process's overlapping
  transaction saw nothing to wait on and nothing took it. Re-planned, it posts (or is refused and dead-lettered,
  or parks again with a new ``planned_at``).

Revision ID: ledger_0015
Revises: ledger_0014
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "ledger_0015"
down_revision = "ledger_0014"
branch_labels = None
depends_on = None

S = "ledger"

UPGRADE = [
    f"ALTER TABLE {S}.pending_events ADD COLUMN planned_at timestamptz NOT NULL DEFAULT now()",
    f"UPDATE {S}.pending_events SET planned_at = received_at",
    f"CREATE INDEX pending_events_planned_idx ON {S}.pending_events (planned_at)",
]
DOWNGRADE = [f"DROP INDEX {S}.pending_events_planned_idx", f"ALTER TABLE {S}.pending_events DROP COLUMN planned_at"]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
