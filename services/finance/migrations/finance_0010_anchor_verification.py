"""finance: a verification run records what it found of the anchors (issue 19) — how many it checked, the latest one
found intact (number and hash) and the first broken one.

Since ledger_0014 the journal is one hash chain per segment, and anchors (``ledger.chain_anchors``) pin the heads of
every segment together; a run started from the workspace verifies both (``services/finance/jobs.py``). A run is
broken when it names a broken entry or a broken anchor, so the check that a problem goes with a broken link now reads
either. Runs recorded before have no anchor columns (NULL: anchors were not verified then).

Downgrade: the earlier shape knows a broken run only by its first broken link, so a run broken by an anchor alone (no
broken entry) could not stay in it, and dropping its problem would show it intact. It stays broken: its first broken
link becomes 0, no entry's sequence (they count from 1), and its problem names the anchor (the verifier's text
already starts with "anchor <number>"; any other is prefixed with it). The anchor columns are dropped for every run;
upgrading again leaves these runs broken at link 0 with the anchor in the problem and NULL anchor columns. The
results are immutable (``finance_0003``): the trigger is off for that one UPDATE, in the migration's transaction.

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
    f"ALTER TABLE {S}.verification_results DISABLE TRIGGER verification_results_immutable",
    f"""UPDATE {S}.verification_results
        SET first_broken = 0,
            problem = CASE WHEN problem ~ ('^anchor ' || first_broken_anchor || '\\M') THEN problem
                ELSE 'anchor ' || first_broken_anchor || ': ' || problem END
        WHERE first_broken IS NULL AND first_broken_anchor IS NOT NULL""",
    f"ALTER TABLE {S}.verification_results ENABLE TRIGGER verification_results_immutable",
    f"""ALTER TABLE {S}.verification_results
        DROP CONSTRAINT verification_results_broken,
        DROP COLUMN anchors, DROP COLUMN latest_anchor, DROP COLUMN latest_anchor_hash,
        DROP COLUMN first_broken_anchor,
        ADD CONSTRAINT verification_results_broken CHECK ((first_broken IS NULL) = (problem IS NULL))""",
]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
