"""ledger: closed accounting periods — a closed month of a lapas takes no entry.

Revision ID: ledger_0010
Revises: ledger_0009
Create Date: 2026-12-03

``karya ledger close --lapas X --period 2026-11 --as USER`` records a row in ``ledger.closed_periods``: the lapas,
the month, the zone it was counted in (the lapas' own, from its province) and its bounds ``[starts_at, ends_at)``
as instants, who closed it and when. The database holds the rules:

- append-only: row triggers refuse UPDATE and DELETE, a statement trigger TRUNCATE (reopening is not supported);
  the service role keeps INSERT and SELECT, the auditor SELECT; the finance role gets nothing;
- a period is closed once (the primary key); its bounds are the month's in its zone (a check recomputes them);
  ``closed_at`` is the transaction's time and not before the month's end (a month that has not ended is refused);
- ``journal_entries_open_period``, a statement trigger after every insert into ``ledger.journal_entries``, refuses
  the statement when one of its entries has an effective time inside a closed period of the entry's lapas. An
  entry's lapas is the one ``finance_0002`` documents: an entry of an order belongs to the order's lapas (its
  ``order_facts`` row: the posting use case writes the facts of a batch's new orders before their entries), a
  savings payout (``payout:<WBP>:<id>``) to the lapas of the orders whose entries moved the inmate's savings. An
  entry without either (an adjustment of no order) belongs to no lapas. When no period is closed at all the
  trigger returns after one index probe, so the hot path pays one function call per posting statement.

The posting path places late items itself (``services.ledger.domain.periods``): the trigger is the guarantee, not
the mechanism. A close takes the chain head lock first, so it waits for postings under way and the postings after
it see the closed period (their trigger runs after they took the chain head).
"""

from __future__ import annotations

from infra.db.roles import SERVICE
from infra.db.steps import statement_migration

revision = "ledger_0010"
down_revision = "ledger_0009"
branch_labels = None
depends_on = None

S = "ledger"
T = "closed_periods"
MONTH_START = "make_timestamp(split_part(period, '-', 1)::int, split_part(period, '-', 2)::int, 1, 0, 0, 0)"

UP = [
    f"""CREATE TABLE {S}.{T} (
        lapas_id text NOT NULL CHECK (btrim(lapas_id) <> ''),
        period text NOT NULL CHECK (period ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])$'),
        zone text NOT NULL,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        closed_by text NOT NULL CHECK (btrim(closed_by) <> ''),
        closed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (lapas_id, period),
        CONSTRAINT month_bounds CHECK (
            starts_at = {MONTH_START} AT TIME ZONE zone
            AND ends_at = ({MONTH_START} + interval '1 month') AT TIME ZONE zone),
        CONSTRAINT month_ended CHECK (closed_at >= ends_at))""",
    f"COMMENT ON TABLE {S}.{T} IS 'Closed months of a lapas (counted in its zone): no entry of the lapas may be "
    "effective inside one; append-only'",
    f"""CREATE FUNCTION {S}.refuse_closed_periods() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        DECLARE bad record;
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM {S}.{T}) THEN
            RETURN NULL;
          END IF;
          WITH lapas AS (
            SELECT e.sequence, e.posting_key, e.effective_at, f.lapas_id
              FROM new_entries e JOIN {S}.order_facts f ON f.order_key = e.order_key
            UNION
            SELECT e.sequence, e.posting_key, e.effective_at, f.lapas_id
              FROM new_entries e
              JOIN {S}.journal_lines l ON l.account = 'liability:inmate_savings:' || split_part(e.posting_key, ':', 2)
              JOIN {S}.journal_entries o ON o.sequence = l.sequence
              JOIN {S}.order_facts f ON f.order_key = o.order_key
             WHERE e.order_key IS NULL AND e.posting_key LIKE 'payout:%'
          )
          SELECT x.sequence, x.posting_key, x.effective_at, p.lapas_id, p.period INTO bad
            FROM lapas x JOIN {S}.{T} p
              ON p.lapas_id = x.lapas_id AND x.effective_at >= p.starts_at AND x.effective_at < p.ends_at
           ORDER BY x.sequence LIMIT 1;
          IF FOUND THEN
            RAISE EXCEPTION 'journal entry % (%) is effective at % inside period % of lapas %, which is closed '
              '(closed_period): a late item posts in the first open period', bad.sequence, bad.posting_key,
              bad.effective_at, bad.period, bad.lapas_id
              USING ERRCODE = 'check_violation', CONSTRAINT = 'closed_period';
          END IF;
          RETURN NULL;
        END $$""",
    f"REVOKE ALL ON FUNCTION {S}.refuse_closed_periods() FROM PUBLIC",
    f"""CREATE TRIGGER journal_entries_open_period AFTER INSERT ON {S}.journal_entries
        REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_closed_periods()""",
    f"""CREATE TRIGGER {T}_immutable BEFORE UPDATE OR DELETE ON {S}.{T}
        FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()""",
    f"""CREATE TRIGGER {T}_no_truncate BEFORE TRUNCATE ON {S}.{T}
        FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_change()""",
    # The default privileges give the service INSERT and SELECT and the auditor SELECT; nothing else, ever.
    f"REVOKE UPDATE, DELETE, TRUNCATE ON {S}.{T} FROM {SERVICE}",
]

DOWN = [
    f"DROP TRIGGER journal_entries_open_period ON {S}.journal_entries",
    f"DROP FUNCTION {S}.refuse_closed_periods()",
    f"DROP TABLE {S}.{T}",
]

upgrade, downgrade = statement_migration(UP, DOWN)
