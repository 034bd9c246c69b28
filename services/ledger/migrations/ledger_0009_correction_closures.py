"""ledger: a correction proposal can be rejected (by another person) or withdrawn (by its proposer).

Revision ID: ledger_0009
Revises: ledger_0008
Create Date: 2026-12-02

Until now a proposal could only be approved; one nobody wanted waited forever. ``karya ledger reject`` and
``karya ledger withdraw`` close it without posting anything: a row in ``ledger.correction_closures`` says who
closed it, when and why. The journal is untouched. The database holds the rules, like the approvals of
``ledger_0007``:

- append-only: row triggers refuse UPDATE and DELETE, a statement trigger TRUNCATE; the service role keeps only
  INSERT and SELECT;
- one closure per proposal (its primary key); a rejection never by the proposer (``four_eyes``), a withdrawal only
  by the proposer (``withdraw_own``);
- a proposal is decided once (``decide_once``): no closure of an approved proposal and no approval of a closed
  one. Both triggers first take a transaction-level advisory lock on the proposal, so two deciders of the same
  proposal run one after the other and the second sees the first's row (the use cases also hold the chain head).
"""

from __future__ import annotations

from infra.db.roles import SERVICE
from infra.db.steps import statement_migration

revision = "ledger_0009"
down_revision = "ledger_0008"
branch_labels = None
depends_on = None

S = "ledger"
T = "correction_closures"
#: First key of the advisory lock both triggers take on a proposal (second key: the proposal id).
LOCK = "hashtext('ledger.correction_decision')"

UP = [
    f"""CREATE TABLE {S}.{T} (
        proposal_id bigint PRIMARY KEY REFERENCES {S}.correction_proposals,
        outcome text NOT NULL CHECK (outcome IN ('rejected', 'withdrawn')),
        closed_by text NOT NULL CHECK (btrim(closed_by) <> ''),
        closed_at timestamptz NOT NULL,
        reason text NOT NULL CHECK (btrim(reason) <> ''))""",
    f"""CREATE FUNCTION {S}.check_closure() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE proposer text;
        BEGIN
          PERFORM pg_advisory_xact_lock({LOCK}, (NEW.proposal_id % 2147483647)::int);
          SELECT p.proposed_by INTO proposer FROM {S}.correction_proposals p WHERE p.proposal_id = NEW.proposal_id;
          IF NEW.outcome = 'rejected' AND NEW.closed_by = proposer THEN
            RAISE EXCEPTION 'rejection of proposal % refused (four_eyes): % proposed it', NEW.proposal_id,
              NEW.closed_by USING ERRCODE = 'check_violation', CONSTRAINT = 'four_eyes';
          END IF;
          IF NEW.outcome = 'withdrawn' AND NEW.closed_by IS DISTINCT FROM proposer THEN
            RAISE EXCEPTION 'withdrawal of proposal % refused (withdraw_own): only % withdraws it', NEW.proposal_id,
              proposer USING ERRCODE = 'check_violation', CONSTRAINT = 'withdraw_own';
          END IF;
          IF EXISTS (SELECT 1 FROM {S}.correction_approvals a WHERE a.proposal_id = NEW.proposal_id) THEN
            RAISE EXCEPTION 'proposal % refused (decide_once): it is already approved', NEW.proposal_id
              USING ERRCODE = 'check_violation', CONSTRAINT = 'decide_once';
          END IF;
          RETURN NEW;
        END $$""",
    f"""CREATE TRIGGER {T}_rules BEFORE INSERT ON {S}.{T}
        FOR EACH ROW EXECUTE FUNCTION {S}.check_closure()""",
    f"""CREATE FUNCTION {S}.check_not_closed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_advisory_xact_lock({LOCK}, (NEW.proposal_id % 2147483647)::int);
          IF EXISTS (SELECT 1 FROM {S}.{T} c WHERE c.proposal_id = NEW.proposal_id) THEN
            RAISE EXCEPTION 'approval of proposal % refused (decide_once): it was rejected or withdrawn',
              NEW.proposal_id USING ERRCODE = 'check_violation', CONSTRAINT = 'decide_once';
          END IF;
          RETURN NEW;
        END $$""",
    f"""CREATE TRIGGER correction_approvals_not_closed BEFORE INSERT ON {S}.correction_approvals
        FOR EACH ROW EXECUTE FUNCTION {S}.check_not_closed()""",
    f"""CREATE TRIGGER {T}_immutable BEFORE UPDATE OR DELETE ON {S}.{T}
        FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()""",
    f"""CREATE TRIGGER {T}_no_truncate BEFORE TRUNCATE ON {S}.{T}
        FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_change()""",
    # The default privileges give the service INSERT and SELECT; say so explicitly: nothing else, ever.
    f"REVOKE UPDATE, DELETE, TRUNCATE ON {S}.{T} FROM {SERVICE}",
]

DOWN = [
    f"DROP TRIGGER correction_approvals_not_closed ON {S}.correction_approvals",
    f"DROP FUNCTION {S}.check_not_closed()",
    f"DROP TABLE {S}.{T}",
    f"DROP FUNCTION {S}.check_closure()",
]

upgrade, downgrade = statement_migration(UP, DOWN)
