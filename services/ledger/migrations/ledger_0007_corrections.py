"""ledger: correction proposals and their approvals — append-only, approved only by someone else.

Revision ID: ledger_0007
Revises: ledger_0006
Create Date: 2026-12-02

A revert or adjustment (``karya ledger revert|adjust``) is stored as a proposal with the exact lines it will post;
``karya ledger approve`` inserts an approval and posts the entry in the same transaction. The database holds:

- both tables are append-only: row triggers refuse UPDATE and DELETE, a statement trigger TRUNCATE (the journal's
  ``refuse_change``), and the service role keeps only the default INSERT and SELECT (no ``mutable_table_grants``);
- one approval per proposal (its primary key), never by the proposer (trigger ``correction_approvals_four_eyes``,
  rule ``four_eyes``), and every approval names the journal entry it posted (foreign key, checked at commit);
- a proposal states its reason and its proposer; a revert names the posting key it reverts.
"""

from __future__ import annotations

from infra.db.roles import SERVICE
from infra.db.steps import statement_migration

revision = "ledger_0007"
down_revision = "ledger_0006"
branch_labels = None
depends_on = None

S = "ledger"
TABLES = ("correction_proposals", "correction_approvals")

UP = [
    f"""CREATE TABLE {S}.correction_proposals (
        proposal_id bigserial PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('revert', 'adjust')),
        target text REFERENCES {S}.journal_entries (posting_key),
        reason text NOT NULL CHECK (btrim(reason) <> ''),
        proposed_by text NOT NULL CHECK (btrim(proposed_by) <> ''),
        proposed_at timestamptz NOT NULL,
        entry jsonb NOT NULL,
        CONSTRAINT revert_names_its_target CHECK ((kind = 'revert') = (target IS NOT NULL)))""",
    f"CREATE INDEX correction_proposals_target_idx ON {S}.correction_proposals (target) WHERE target IS NOT NULL",
    f"""CREATE TABLE {S}.correction_approvals (
        proposal_id bigint PRIMARY KEY REFERENCES {S}.correction_proposals,
        approved_by text NOT NULL CHECK (btrim(approved_by) <> ''),
        approved_at timestamptz NOT NULL,
        posting_key text NOT NULL UNIQUE
            REFERENCES {S}.journal_entries (posting_key) DEFERRABLE INITIALLY DEFERRED)""",
    f"""CREATE FUNCTION {S}.check_four_eyes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM {S}.correction_proposals p
                      WHERE p.proposal_id = NEW.proposal_id AND p.proposed_by = NEW.approved_by) THEN
            RAISE EXCEPTION 'approval of proposal % refused (four_eyes): % proposed it', NEW.proposal_id,
              NEW.approved_by USING ERRCODE = 'check_violation', CONSTRAINT = 'four_eyes';
          END IF;
          RETURN NEW;
        END $$""",
    f"""CREATE TRIGGER correction_approvals_four_eyes BEFORE INSERT ON {S}.correction_approvals
        FOR EACH ROW EXECUTE FUNCTION {S}.check_four_eyes()""",
    *[
        f"""CREATE TRIGGER {t}_immutable BEFORE UPDATE OR DELETE ON {S}.{t}
            FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()"""
        for t in TABLES
    ],
    *[
        f"""CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {S}.{t}
            FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_change()"""
        for t in TABLES
    ],
    # The default privileges give the service INSERT and SELECT; say so explicitly: nothing else, ever.
    *[f"REVOKE UPDATE, DELETE, TRUNCATE ON {S}.{t} FROM {SERVICE}" for t in TABLES],
]

DOWN = [
    f"DROP TABLE {S}.correction_approvals",
    f"DROP TABLE {S}.correction_proposals",
    f"DROP FUNCTION {S}.check_four_eyes()",
]

upgrade, downgrade = statement_migration(UP, DOWN)
