"""ledger: accounts, the append-only journal (balanced and immutable by the database), balances, policies.

Revision ID: ledger_0002
Revises: ledger_0001
Create Date: 2026-11-28

How the database enforces the journal:
- lines are inserted before their entry (the foreign key to the entry is checked at commit), all lines of an
  entry in one statement; a statement trigger refuses lines for an entry that is already posted;
- a statement trigger on entries refuses any new entry with fewer than two lines or whose debits and credits
  differ;
- row triggers refuse every UPDATE and DELETE, a statement trigger every TRUNCATE, and the service role only
  holds INSERT and SELECT on the journal tables.
"""

from __future__ import annotations

from alembic import op

from infra.db.roles import mutable_table_grants
from infra.db.steps import run_statements

revision = "ledger_0002"
down_revision = "ledger_0001"

S = "ledger"

STATEMENTS = [
    f"""CREATE TABLE {S}.accounts (
        code text PRIMARY KEY, type text NOT NULL, normal_side char(1) NOT NULL CHECK (normal_side IN ('D', 'C')),
        opened_at timestamptz NOT NULL DEFAULT now())""",
    f"""CREATE TABLE {S}.journal_entries (
        sequence bigint PRIMARY KEY CHECK (sequence > 0),
        posting_key text NOT NULL UNIQUE, request_hash text NOT NULL, kind text NOT NULL, memo text NOT NULL,
        effective_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL,
        source_event text, policy_ref text, reverses text, order_key text, batch_id text,
        prev_hash text NOT NULL, chain_hash text NOT NULL UNIQUE)""",
    f"CREATE INDEX journal_entries_order_idx ON {S}.journal_entries (order_key) WHERE order_key IS NOT NULL",
    f"""CREATE TABLE {S}.journal_lines (
        sequence bigint NOT NULL REFERENCES {S}.journal_entries DEFERRABLE INITIALLY DEFERRED,
        line_no integer NOT NULL, account text NOT NULL REFERENCES {S}.accounts,
        side char(1) NOT NULL CHECK (side IN ('D', 'C')), amount bigint NOT NULL CHECK (amount > 0),
        PRIMARY KEY (sequence, line_no))""",
    f"CREATE INDEX journal_lines_account_idx ON {S}.journal_lines (account, sequence)",
    f"""CREATE FUNCTION {S}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the journal is append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
        END $$""",
    f"""CREATE FUNCTION {S}.check_lines_for_new_entries() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM new_lines n JOIN {S}.journal_entries e USING (sequence)) THEN
            RAISE EXCEPTION 'lines cannot be added to an entry already posted' USING ERRCODE = 'check_violation';
          END IF;
          RETURN NULL;
        END $$""",
    f"""CREATE FUNCTION {S}.check_entries_balance() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE bad record;
        BEGIN
          SELECT e.sequence, e.posting_key, count(l.line_no) AS n,
                 coalesce(sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END), 0) AS diff
            INTO bad
            FROM new_entries e LEFT JOIN {S}.journal_lines l USING (sequence)
           GROUP BY e.sequence, e.posting_key
          HAVING count(l.line_no) < 2 OR coalesce(sum(CASE l.side WHEN 'D' THEN l.amount ELSE -l.amount END), 0) <> 0
           LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'journal entry % (%) is not balanced: % lines, debits - credits = %',
              bad.sequence, bad.posting_key, bad.n, bad.diff USING ERRCODE = 'check_violation';
          END IF;
          RETURN NULL;
        END $$""",
    f"""CREATE TRIGGER journal_lines_only_new AFTER INSERT ON {S}.journal_lines
        REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT EXECUTE FUNCTION {S}.check_lines_for_new_entries()""",
    f"""CREATE TRIGGER journal_entries_balanced AFTER INSERT ON {S}.journal_entries
        REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION {S}.check_entries_balance()""",
    *[
        f"""CREATE TRIGGER {t}_immutable BEFORE UPDATE OR DELETE ON {S}.{t}
            FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()"""
        for t in ("journal_entries", "journal_lines")
    ],
    *[
        f"""CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {S}.{t}
            FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_change()"""
        for t in ("journal_entries", "journal_lines")
    ],
    # The chain head: the last sequence and hash, locked by every posting transaction (commit order = chain order).
    f"""CREATE TABLE {S}.chain_head (
        id boolean PRIMARY KEY DEFAULT true CHECK (id), sequence bigint NOT NULL, hash text NOT NULL)""",
    f"INSERT INTO {S}.chain_head (sequence, hash) VALUES (0, repeat('0', 64))",
    f"""CREATE TABLE {S}.account_balances (
        account text PRIMARY KEY REFERENCES {S}.accounts,
        debit_total bigint NOT NULL DEFAULT 0 CHECK (debit_total >= 0),
        credit_total bigint NOT NULL DEFAULT 0 CHECK (credit_total >= 0),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT savings_never_negative CHECK (
            account NOT LIKE 'liability:inmate\\_savings:%' OR credit_total >= debit_total))""",
    f"""CREATE TABLE {S}.posting_conflicts (
        id bigserial PRIMARY KEY, posting_key text NOT NULL, existing_hash text NOT NULL, new_hash text NOT NULL,
        source_event text, detected_at timestamptz NOT NULL DEFAULT now())""",
    f"""CREATE TABLE {S}.split_policies (
        policy_id text NOT NULL, version integer NOT NULL, lapas_id text NOT NULL, sku text,
        effective_from timestamptz NOT NULL, body jsonb NOT NULL, policy_hash text NOT NULL,
        loaded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (policy_id, version))""",
    # What the ledger knows of each order: the completion and settlement payloads it posted, refunds so far.
    f"""CREATE TABLE {S}.order_facts (
        order_key text PRIMARY KEY, lapas_id text NOT NULL, completion jsonb NOT NULL, settlement jsonb,
        refunded_gross bigint NOT NULL DEFAULT 0 CHECK (refunded_gross >= 0),
        updated_at timestamptz NOT NULL DEFAULT now())""",
    # Events that arrived before what they depend on (a settlement before the completion, a refund before
    # the settlement); replayed when the order catches up.
    f"""CREATE TABLE {S}.pending_events (
        event_id uuid PRIMARY KEY, order_key text NOT NULL, type text NOT NULL, envelope jsonb NOT NULL,
        waiting_for text NOT NULL, received_at timestamptz NOT NULL DEFAULT now())""",
    f"CREATE INDEX pending_events_order_idx ON {S}.pending_events (order_key)",
]


def upgrade() -> None:
    run_statements(STATEMENTS)
    for table, delete in [
        ("chain_head", False),
        ("account_balances", False),
        ("order_facts", False),
        ("pending_events", True),
    ]:
        for statement in mutable_table_grants(S, table, delete=delete):
            op.execute(statement)


def downgrade() -> None:
    for table in [
        "pending_events",
        "order_facts",
        "split_policies",
        "posting_conflicts",
        "account_balances",
        "chain_head",
        "journal_lines",
        "journal_entries",
        "accounts",
    ]:
        op.execute(f"DROP TABLE {S}.{table}")
    for fn in ["check_entries_balance", "check_lines_for_new_entries", "refuse_change"]:
        op.execute(f"DROP FUNCTION {S}.{fn}")
