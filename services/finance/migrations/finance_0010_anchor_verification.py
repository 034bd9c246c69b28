"""finance: a verification run records what it found of the anchors (issue 19) — how many it checked, the latest one
found intact (number and hash) and the first broken one.

Since ledger_0014 the journal is one hash chain per segment, and anchors (``ledger.chain_anchors``) pin the heads of
every segment together; a run started from the workspace verifies both (``services/finance/jobs.py``). A run is
broken when it names a broken entry or a broken anchor, so the check that a problem goes with a broken link now reads
either. Runs recorded before have no anchor columns (NULL: anchors were not verified then).

Revision ID: finance_0010
Revises: finance_0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "finance_0010"
down_revision = "finance_0009"
branch_labels = None
depends_on = None

S = "finance"

UPGRADE = [
    f"""ALTER TABLE {S}.verification_results
        ADD COLUMN anchors bigint CHECK (anchors >= 0),
        ADD COLUMN latest_anchor bigint,
        ADD COLUMN latest_anchor_hash text,
        ADD COLUMN first_broken_anchor bigint,
        DROP CONSTRAINT verification_results_broken,
        ADD CONSTRAINT verification_results_broken
            CHECK ((first_broken IS NULL AND first_broken_anchor IS NULL) = (problem IS NULL))""",
]

DOWNGRADE = [
    f"""ALTER TABLE {S}.verification_results
        DROP CONSTRAINT verification_results_broken,
        DROP COLUMN anchors, DROP COLUMN latest_anchor, DROP COLUMN latest_anchor_hash,
        DROP COLUMN first_broken_anchor,
        ADD CONSTRAINT verification_results_broken CHECK ((first_broken IS NULL) = (problem IS NULL))""",
]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
