"""ledger: the journal's statement triggers look up each new entry by index, whatever the journal's size.

Revision ID: ledger_0004
Revises: ledger_0003
Create Date: 2026-11-28

The planner knows nothing about a transition table, so ``new_entries LEFT JOIN journal_lines`` and
``NOT EXISTS (… journal_entries …)`` could become hash joins over the whole journal: a posting batch took 4× longer
at 100k entries than at 1k. Correlated subqueries (``LATERAL``, scalar sub-selects) are index probes per new entry,
so the cost of a batch no longer grows with the journal. Same checks, same messages.
"""

from __future__ import annotations

from alembic import op

revision = "ledger_0004"
down_revision = "ledger_0003"
branch_labels = None
depends_on = None

S = "ledger"

_LINES = f"""CREATE OR REPLACE FUNCTION {S}.check_lines_for_new_entries() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM (SELECT DISTINCT sequence FROM new_lines) n
                 WHERE (SELECT e.sequence FROM {S}.journal_entries e WHERE e.sequence = n.sequence) IS NULL) THEN
        RAISE EXCEPTION 'journal lines need their entry, inserted by the same statement'
          USING ERRCODE = 'foreign_key_violation';
      END IF;
      IF EXISTS (SELECT 1 FROM (SELECT sequence, count(*) AS n FROM new_lines GROUP BY sequence) n
                 WHERE n.n <> (SELECT count(*) FROM {S}.journal_lines l WHERE l.sequence = n.sequence)) THEN
        RAISE EXCEPTION 'lines cannot be added to an entry already posted' USING ERRCODE = 'check_violation';
      END IF;
      IF EXISTS (SELECT 1 FROM (SELECT DISTINCT account FROM new_lines) n
                 WHERE (SELECT a.code FROM {S}.accounts a WHERE a.code = n.account) IS NULL) THEN
        RAISE EXCEPTION 'journal lines name an account that was never opened' USING ERRCODE = 'foreign_key_violation';
      END IF;
      RETURN NULL;
    END $$"""

_BALANCE = f"""CREATE OR REPLACE FUNCTION {S}.check_entries_balance() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE bad record;
    BEGIN
      SELECT e.sequence, e.posting_key, x.n, x.diff INTO bad
        FROM new_entries e CROSS JOIN LATERAL (
          SELECT count(*) AS n, coalesce(sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END), 0) AS diff
            FROM {S}.journal_lines l WHERE l.sequence = e.sequence) x
       WHERE x.n < 2 OR x.diff <> 0
       LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'journal entry % (%) is not balanced: % lines, debits - credits = %',
          bad.sequence, bad.posting_key, bad.n, bad.diff USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END $$"""


def upgrade() -> None:
    op.execute(_LINES)
    op.execute(_BALANCE)


def downgrade() -> None:
    """Back to the join forms of ledger_0002 (balance) and ledger_0003 (lines)."""
    from services.ledger.migrations.ledger_0002_journal import STATEMENTS
    from services.ledger.migrations.ledger_0003_statement_checks import _CHECK_LINES

    op.execute(_CHECK_LINES)
    op.execute(
        next(s for s in STATEMENTS if "check_entries_balance()" in s).replace(
            "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
        )
    )
