"""ledger: journal integrity checked per statement instead of per line (same guarantees, a fraction of the cost).

Revision ID: ledger_0003
Revises: ledger_0002
Create Date: 2026-11-28

The two foreign keys of ``journal_lines`` (to its entry, deferred, and to its account) cost a row lock and a
lookup per line — more than half of the ledger's database time. They are replaced by the statement trigger on
lines, which checks the whole statement at once:

- every line's entry exists when the statement ends, so an entry and its lines are inserted by ONE statement
  (``WITH e AS (INSERT INTO journal_entries …) INSERT INTO journal_lines …``); the balance trigger on entries
  (unchanged) sees those lines;
- all lines of an entry arrive in that one statement (no line is ever added to an entry already posted);
- every account exists; accounts can be neither deleted nor renamed once opened.
"""

from __future__ import annotations

from alembic import op

revision = "ledger_0003"
down_revision = "ledger_0002"
branch_labels = None
depends_on = None

S = "ledger"

_FUNCTION = f"CREATE OR REPLACE FUNCTION {S}.check_lines_for_new_entries() RETURNS trigger LANGUAGE plpgsql AS"

_CHECK_LINES = f"""{_FUNCTION} $$
    BEGIN
      IF EXISTS (SELECT 1 FROM (SELECT DISTINCT sequence FROM new_lines) n
                 WHERE NOT EXISTS (SELECT 1 FROM {S}.journal_entries e WHERE e.sequence = n.sequence)) THEN
        RAISE EXCEPTION 'journal lines need their entry, inserted by the same statement'
          USING ERRCODE = 'foreign_key_violation';
      END IF;
      IF EXISTS (SELECT 1 FROM (SELECT sequence, count(*) AS n FROM new_lines GROUP BY sequence) n
                 WHERE n.n <> (SELECT count(*) FROM {S}.journal_lines l WHERE l.sequence = n.sequence)) THEN
        RAISE EXCEPTION 'lines cannot be added to an entry already posted' USING ERRCODE = 'check_violation';
      END IF;
      IF EXISTS (SELECT 1 FROM (SELECT DISTINCT account FROM new_lines) n
                 WHERE NOT EXISTS (SELECT 1 FROM {S}.accounts a WHERE a.code = n.account)) THEN
        RAISE EXCEPTION 'journal lines name an account that was never opened' USING ERRCODE = 'foreign_key_violation';
      END IF;
      RETURN NULL;
    END $$"""

_OLD_CHECK_LINES = f"""{_FUNCTION} $$
    BEGIN
      IF EXISTS (SELECT 1 FROM new_lines n JOIN {S}.journal_entries e USING (sequence)) THEN
        RAISE EXCEPTION 'lines cannot be added to an entry already posted' USING ERRCODE = 'check_violation';
      END IF;
      RETURN NULL;
    END $$"""


def upgrade() -> None:
    op.execute(f"ALTER TABLE {S}.journal_lines DROP CONSTRAINT journal_lines_sequence_fkey")
    op.execute(f"ALTER TABLE {S}.journal_lines DROP CONSTRAINT journal_lines_account_fkey")
    op.execute(_CHECK_LINES)
    op.execute(
        f"""CREATE TRIGGER accounts_permanent BEFORE UPDATE OF code OR DELETE ON {S}.accounts
            FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()"""
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER accounts_permanent ON {S}.accounts")
    op.execute(_OLD_CHECK_LINES)
    op.execute(
        f"ALTER TABLE {S}.journal_lines ADD CONSTRAINT journal_lines_account_fkey "
        f"FOREIGN KEY (account) REFERENCES {S}.accounts"
    )
    op.execute(
        f"ALTER TABLE {S}.journal_lines ADD CONSTRAINT journal_lines_sequence_fkey FOREIGN KEY (sequence) "
        f"REFERENCES {S}.journal_entries DEFERRABLE INITIALLY DEFERRED"
    )
