"""ledger: account balances are kept by the database from the journal lines; the service can no longer write them.

Revision ID: ledger_0006
Revises: ledger_0005
Create Date: 2026-12-02

Before, the service added each batch's debits and credits to ``account_balances`` itself and held UPDATE on the
table, so a balance could be rewritten without a journal line (a payout of 40,000,000 went through against real
savings of 817,208). Now:

- a statement-level AFTER INSERT trigger on ``journal_lines`` sums the statement's new lines per account (its
  transition table) and adds them to ``account_balances``: missing rows created, rows locked in account order
  (the lock order of :mod:`services.ledger.adapters.locks`), then one UPDATE; one trigger call per posting
  statement, not per line;
- the trigger function is ``SECURITY DEFINER``, owned by the migrator (the table's owner), with a fixed
  ``search_path``; nobody may call it except as the trigger;
- the service role keeps only SELECT on ``account_balances`` (INSERT, UPDATE, DELETE, TRUNCATE revoked), so the
  only way to move a balance is a balanced, chained journal entry. The ``savings_never_negative`` check still
  refuses a statement that would take an inmate's savings below zero.

Existing balance rows are left as they are: ``karya ledger verify`` compares them with the lines (a migration
that recomputed them would also erase the evidence of an earlier rewrite).
"""

from __future__ import annotations

from alembic import op

from infra.db.roles import AUDITOR, SERVICE, mutable_table_grants
from infra.db.steps import run_statements

revision = "ledger_0006"
down_revision = "ledger_0005"
branch_labels = None
depends_on = None

S = "ledger"

# Three steps, as the service did them: an upsert adding the totals in one go is refused by the
# savings_never_negative check, which PostgreSQL applies to the row an INSERT proposes before it finds the conflict
# (a refund's debit on savings would be proposed as a new row with debit > credit).
ADD_LINES_TO_BALANCES = f"""CREATE FUNCTION {S}.add_lines_to_balances() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    BEGIN
      INSERT INTO {S}.account_balances (account)
      SELECT DISTINCT n.account FROM new_lines n ORDER BY n.account
      ON CONFLICT (account) DO NOTHING;
      PERFORM 1 FROM {S}.account_balances b
        WHERE b.account IN (SELECT n.account FROM new_lines n) ORDER BY b.account FOR UPDATE;
      UPDATE {S}.account_balances b
         SET debit_total = b.debit_total + u.debit, credit_total = b.credit_total + u.credit, updated_at = now()
        FROM (SELECT n.account,
                     coalesce(sum(n.amount) FILTER (WHERE n.side = 'D'), 0) AS debit,
                     coalesce(sum(n.amount) FILTER (WHERE n.side = 'C'), 0) AS credit
                FROM new_lines n GROUP BY n.account) u
       WHERE b.account = u.account;
      RETURN NULL;
    END $$"""

STATEMENTS = [
    ADD_LINES_TO_BALANCES,
    f"REVOKE ALL ON FUNCTION {S}.add_lines_to_balances() FROM PUBLIC, {SERVICE}, {AUDITOR}",
    # Named to fire after journal_lines_only_new (same event, triggers fire in name order): the lines are
    # checked (entry present, account opened) before they count.
    f"""CREATE TRIGGER journal_lines_to_balances AFTER INSERT ON {S}.journal_lines
        REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION {S}.add_lines_to_balances()""",
    f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {S}.account_balances FROM {SERVICE}",
]


def upgrade() -> None:
    run_statements(STATEMENTS)


def downgrade() -> None:
    op.execute(f"DROP TRIGGER journal_lines_to_balances ON {S}.journal_lines")
    op.execute(f"DROP FUNCTION {S}.add_lines_to_balances()")
    op.execute(f"GRANT INSERT ON {S}.account_balances TO {SERVICE}")
    run_statements(mutable_table_grants(S, "account_balances"))
