"""ledger: chain segments, per-segment balance rows and anchors — no global serialisation point in posting (issue 19).

Before, every posting transaction locked the one ``chain_head`` row, so one posting ran at a time whatever the number
of ledger processes. Now:

- ``chain_segments``: one head row per segment (``services/ledger/domain/hashchain.py``). A posting locks the heads of
  the segments its entries belong to (an order's segment is the Kafka partition its events arrive on), so postings of
  different segments never wait on each other. The entries before this migration are the segment ``legacy`` (their
  format ``karya-journal/1`` unchanged); its head is the old chain head.
- ``journal_sequence``: the journal's sequence numbers, drawn under the segment's lock (so they increase along each
  segment's chain), continuing after the old head. ``journal_entries.segment`` names each entry's chain.
- ``chain_head`` is now a view over the segment heads: the largest sequence and the root hash of every head (what an
  anchor would commit to at that moment), for the readers that showed the one head.
- ``chain_anchors``: append-only; each anchor commits to every segment's head (their root hash) and to the anchor
  before it. Taken by the ledger process periodically, at period close and on demand.
- ``account_balances`` gets a row per (account, segment): the statement trigger adds a posting's lines to the rows of
  its entries' segments, so two postings of different segments never wait on one hot balance row (the bank, the
  receivables, the fee and tax accounts every sale touches). An account's balance is the sum of its rows. The rule
  that an inmate's savings never go below zero is on that sum now: the trigger checks it for every savings account a
  statement debits, under a row lock on each such account (credits, the common case, take none).

Revision ID: ledger_0014
Revises: ledger_0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, FINANCE, SERVICE
from infra.db.steps import statement_migration
from services.ledger.migrations.ledger_0006_balances_from_lines import (
    ADD_LINES_TO_BALANCES as OLD_ADD_LINES_TO_BALANCES,
)

revision = "ledger_0014"
down_revision = "ledger_0013"
branch_labels = None
depends_on = None

S = "ledger"
SEGMENTS = 6  # services.ledger.domain.hashchain.SEGMENTS when this migration was written: rows made up front
GENESIS = "repeat('0', 64)"

# One line per segment, sorted by segment (bytewise), under a tag: services.ledger.domain.hashchain.heads_root.
HEADS_ROOT = (
    "encode(sha256(convert_to('karya-heads/1' || E'\\n' || string_agg(segment || ' ' || last_sequence || ' ' || hash, "
    "E'\\n' ORDER BY segment COLLATE \"C\"), 'UTF8')), 'hex')"
)

# One upsert now (ledger_0006 needed three steps because the savings check sat on the row an INSERT proposes), rows in
# (account, segment) order, the lock order of services.ledger.adapters.locks.
ADD_LINES_TO_BALANCES = f"""CREATE OR REPLACE FUNCTION {S}.add_lines_to_balances() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DECLARE short record;
    BEGIN
      INSERT INTO {S}.account_balances AS b (account, segment, debit_total, credit_total)
      SELECT n.account, e.segment,
             coalesce(sum(n.amount) FILTER (WHERE n.side = 'D'), 0),
             coalesce(sum(n.amount) FILTER (WHERE n.side = 'C'), 0)
        FROM new_lines n JOIN {S}.journal_entries e USING (sequence)
       GROUP BY n.account, e.segment
       ORDER BY n.account, e.segment
      ON CONFLICT (account, segment) DO UPDATE
         SET debit_total = b.debit_total + excluded.debit_total,
             credit_total = b.credit_total + excluded.credit_total, updated_at = now();
      -- Savings never below zero, on the account's total over its segments. Only a debit can break it: the row lock
      -- on the account (FOR NO KEY UPDATE: the foreign-key checks of credits take KEY SHARE and do not wait) makes a
      -- second debit of the same savings wait for the first's commit, so the sum below sees it.
      IF EXISTS (SELECT 1 FROM new_lines n WHERE n.side = 'D' AND n.account LIKE 'liability:inmate\\_savings:%') THEN
        PERFORM 1 FROM {S}.accounts a
          WHERE a.code IN (SELECT n.account FROM new_lines n
                            WHERE n.side = 'D' AND n.account LIKE 'liability:inmate\\_savings:%')
          ORDER BY a.code FOR NO KEY UPDATE;
        SELECT b.account, sum(b.credit_total) - sum(b.debit_total) AS balance INTO short
          FROM {S}.account_balances b
         WHERE b.account IN (SELECT n.account FROM new_lines n
                              WHERE n.side = 'D' AND n.account LIKE 'liability:inmate\\_savings:%')
         GROUP BY b.account HAVING sum(b.credit_total) < sum(b.debit_total)
         LIMIT 1;
        IF FOUND THEN
          RAISE EXCEPTION 'savings_never_negative: savings of % would go below zero (%)', short.account, short.balance
            USING ERRCODE = 'check_violation', CONSTRAINT = 'savings_never_negative',
                  TABLE = 'account_balances', SCHEMA = '{S}';
        END IF;
      END IF;
      RETURN NULL;
    END $$"""

UPGRADE = [
    # Segments and their heads; the legacy segment continues the old chain head.
    f"""CREATE TABLE {S}.chain_segments (
        segment text PRIMARY KEY CHECK (segment ~ '^[a-z0-9_]+$'),
        last_sequence bigint NOT NULL CHECK (last_sequence >= 0), hash text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    f"INSERT INTO {S}.chain_segments (segment, last_sequence, hash) "
    f"SELECT 'legacy', sequence, hash FROM {S}.chain_head",
    f"""INSERT INTO {S}.chain_segments (segment, last_sequence, hash)
        SELECT 's' || k, 0, {GENESIS} FROM generate_series(0, {SEGMENTS - 1}) k""",
    f"CREATE SEQUENCE {S}.journal_sequence AS bigint MINVALUE 1",
    f"SELECT setval('{S}.journal_sequence', greatest(sequence, 1), sequence > 0) FROM {S}.chain_head",
    f"GRANT USAGE ON SEQUENCE {S}.journal_sequence TO {SERVICE}",
    f"GRANT UPDATE ON {S}.chain_segments TO {SERVICE}",
    # A fast default: the existing rows are not rewritten (nor updated: the journal's triggers do not fire).
    f"ALTER TABLE {S}.journal_entries ADD COLUMN segment text NOT NULL DEFAULT 'legacy'",
    f"ALTER TABLE {S}.journal_entries ALTER COLUMN segment DROP DEFAULT",
    f"CREATE INDEX journal_entries_segment_idx ON {S}.journal_entries (segment, sequence)",
    f"DROP TABLE {S}.chain_head",
    f"""CREATE VIEW {S}.chain_head AS
        SELECT max(last_sequence) AS sequence, {HEADS_ROOT} AS hash FROM {S}.chain_segments""",
    f"GRANT SELECT ON {S}.chain_head TO {SERVICE}, {AUDITOR}, {FINANCE}",
    # Anchors: append-only, chained.
    f"""CREATE TABLE {S}.chain_anchors (
        anchor_no bigint PRIMARY KEY CHECK (anchor_no > 0), taken_at timestamptz NOT NULL,
        reason text NOT NULL CHECK (reason IN ('interval', 'period_close', 'manual')),
        heads jsonb NOT NULL, heads_root text NOT NULL, prev_hash text NOT NULL, anchor_hash text NOT NULL UNIQUE)""",
    f"REVOKE UPDATE, DELETE, TRUNCATE ON {S}.chain_anchors FROM {SERVICE}",
    f"""CREATE TRIGGER chain_anchors_immutable BEFORE UPDATE OR DELETE ON {S}.chain_anchors
        FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()""",
    f"""CREATE TRIGGER chain_anchors_no_truncate BEFORE TRUNCATE ON {S}.chain_anchors
        FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_change()""",
    f"GRANT SELECT ON {S}.chain_anchors, {S}.chain_segments TO {FINANCE}",
    # Balance rows per (account, segment); the savings rule moves from the row to the account's sum.
    f"ALTER TABLE {S}.account_balances ADD COLUMN segment text NOT NULL DEFAULT 'legacy'",
    f"ALTER TABLE {S}.account_balances ALTER COLUMN segment DROP DEFAULT",
    f"ALTER TABLE {S}.account_balances DROP CONSTRAINT account_balances_pkey",
    f"ALTER TABLE {S}.account_balances ADD PRIMARY KEY (account, segment)",
    f"ALTER TABLE {S}.account_balances DROP CONSTRAINT savings_never_negative",
    ADD_LINES_TO_BALANCES,
]

DOWNGRADE = [
    f"DROP TABLE {S}.chain_anchors",
    f"DROP VIEW {S}.chain_head",
    f"""CREATE TABLE {S}.chain_head (
        id boolean PRIMARY KEY DEFAULT true CHECK (id), sequence bigint NOT NULL, hash text NOT NULL)""",
    # Only meaningful while every entry is in the legacy segment.
    f"INSERT INTO {S}.chain_head (sequence, hash) SELECT last_sequence, hash FROM {S}.chain_segments "
    "WHERE segment = 'legacy'",
    f"GRANT SELECT, UPDATE ON {S}.chain_head TO {SERVICE}",
    f"GRANT SELECT ON {S}.chain_head TO {AUDITOR}, {FINANCE}",
    f"DROP INDEX {S}.journal_entries_segment_idx",
    f"ALTER TABLE {S}.journal_entries DROP COLUMN segment",
    f"DROP SEQUENCE {S}.journal_sequence",
    f"DROP TABLE {S}.chain_segments",
    f"ALTER TABLE {S}.account_balances DROP CONSTRAINT account_balances_pkey",
    f"ALTER TABLE {S}.account_balances DROP COLUMN segment",
    f"ALTER TABLE {S}.account_balances ADD PRIMARY KEY (account)",
    f"""ALTER TABLE {S}.account_balances ADD CONSTRAINT savings_never_negative CHECK (
        account NOT LIKE 'liability:inmate\\_savings:%' OR credit_total >= debit_total)""",
    OLD_ADD_LINES_TO_BALANCES.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1),
]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
