"""ledger: an index on the journal entries of a production batch, for the finance workspace's batch page.

``/batches/{id}`` (services/finance/queries/batches.py) pages the entries ``WHERE batch_id = :b AND sequence >
:after ORDER BY sequence``; without an index PostgreSQL walks the primary key and filters every entry. Measured on a
fresh database of 20,000 orders (60,000 entries, 50 batches of 400 entries), EXPLAIN ANALYZE as the finance role:
the page of entries took 19 ms for an every-lapas viewer (14,905 entries read and dropped to find 101) and 2 ms
with this index; under one lapas' scope 185 ms and 141 ms (the rest is the row-level security's sub-selects, which
read the lapas' orders on every query). The work group's premi (entries of the batch joined to the savings lines)
did not change: it is driven by the savings lines. Partial: most entries (payouts, settlements of no batch,
adjustments) have no batch.

Revision ID: ledger_0012
Revises: ledger_0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "ledger_0012"
down_revision = "ledger_0011"
branch_labels = None
depends_on = None

S = "ledger"

UPGRADE = [
    f"CREATE INDEX journal_entries_batch_idx ON {S}.journal_entries (batch_id, sequence) WHERE batch_id IS NOT NULL"
]
DOWNGRADE = [f"DROP INDEX {S}.journal_entries_batch_idx"]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
