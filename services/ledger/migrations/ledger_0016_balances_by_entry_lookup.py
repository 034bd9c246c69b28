"""ledger: the balance trigger finds each entry's segment by its key, never by reading the journal.

``add_lines_to_balances`` (``ledger_0014``) adds a statement's lines to the balance rows of their entries' segments,
and took each line's segment from ``new_lines JOIN journal_entries USING (sequence)``. The trigger's statement is
planned once per session (PL/pgSQL caches it) and the planner is free to hash-join: it did, building the hash from
the whole journal (a full index-only scan of ``journal_entries_segment_idx``, or a sequential scan) on every
posting. Logged with ``auto_explain`` during a paced bench run: 288 of 303 sampled executions read the whole journal,
median 21 ms of the ledger's 26 ms write per batch, growing with every entry ever posted — the ledger's latency rose
through a run at a constant rate.

Now each distinct entry of the statement looks its segment up by primary key in a scalar sub-select: there is no
plan that reads more of the journal than the statement's own entries. The rows, their lock order (account,
segment) and the savings rule are unchanged.

Revision ID: ledger_0016
Revises: ledger_0015
Create Date: 2026-12-04
"""

from __future__ import annotations

from infra.db.steps import statement_migration
from services.ledger.migrations.ledger_0014_chain_segments import ADD_LINES_TO_BALANCES as OLD_ADD_LINES_TO_BALANCES

revision = "ledger_0016"
down_revision = "ledger_0015"
branch_labels = None
depends_on = None

S = "ledger"

# The segment of each distinct entry first (MATERIALIZED: one primary-key probe per entry, not one per line), then
# the lines summed per (account, segment), in that order: the lock order of services.ledger.adapters.locks. The rest
# of the function (the savings rule) is ledger_0014's, unchanged.
JOINED_LINES = f"""      INSERT INTO {S}.account_balances AS b (account, segment, debit_total, credit_total)
      SELECT n.account, e.segment,
             coalesce(sum(n.amount) FILTER (WHERE n.side = 'D'), 0),
             coalesce(sum(n.amount) FILTER (WHERE n.side = 'C'), 0)
        FROM new_lines n JOIN {S}.journal_entries e USING (sequence)
       GROUP BY n.account, e.segment
       ORDER BY n.account, e.segment"""
LOOKED_UP_SEGMENTS = f"""      WITH entry_segments AS MATERIALIZED (
        SELECT q.sequence, (SELECT e.segment FROM {S}.journal_entries e WHERE e.sequence = q.sequence) AS segment
          FROM (SELECT DISTINCT n.sequence FROM new_lines n) q)
      INSERT INTO {S}.account_balances AS b (account, segment, debit_total, credit_total)
      SELECT n.account, s.segment,
             coalesce(sum(n.amount) FILTER (WHERE n.side = 'D'), 0),
             coalesce(sum(n.amount) FILTER (WHERE n.side = 'C'), 0)
        FROM new_lines n JOIN entry_segments s USING (sequence)
       GROUP BY n.account, s.segment
       ORDER BY n.account, s.segment"""
assert OLD_ADD_LINES_TO_BALANCES.count(JOINED_LINES) == 1
ADD_LINES_TO_BALANCES = OLD_ADD_LINES_TO_BALANCES.replace(JOINED_LINES, LOOKED_UP_SEGMENTS)

upgrade, downgrade = statement_migration([ADD_LINES_TO_BALANCES], [OLD_ADD_LINES_TO_BALANCES])
