"""finance: the chain verifications started from the workspace (issue 16, chain page), append-only.

- ``finance.verification_runs``: one row per verification an auditor starts (who, their role, when);
- ``finance.verification_results``: at most one row per run, written when it ends: entries checked, the head hash
  it reached, the first broken link (its sequence) and the problem, or none when the chain is intact.

Both refuse UPDATE, DELETE and TRUNCATE for every role (``finance.refuse_change`` of ``finance_0001``): a result is
never rewritten. Progress while a run goes is kept by the workspace process, not here; a run without a result
whose process is gone shows as interrupted. The workspace role (``karya_finance``) inserts and reads both; the
auditor reads them.

Revision ID: finance_0003
Revises: finance_0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, FINANCE
from infra.db.steps import statement_migration

revision = "finance_0003"
down_revision = "finance_0002"
branch_labels = None
depends_on = None

S = "finance"
TABLES = ("verification_runs", "verification_results")

UPGRADE = [
    f"""CREATE TABLE {S}.verification_runs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        started_by text NOT NULL CHECK (started_by <> ''),
        role text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    f"""CREATE TABLE {S}.verification_results (
        run_id bigint PRIMARY KEY REFERENCES {S}.verification_runs,
        ended_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        entries bigint NOT NULL CHECK (entries >= 0),
        head_hash text NOT NULL,
        first_broken bigint,
        problem text,
        CONSTRAINT verification_results_broken CHECK ((first_broken IS NULL) = (problem IS NULL)))""",
    *(
        statement
        for table in TABLES
        for statement in (
            f"""CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {S}.{table}
                FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()""",
            f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {S}.{table}
                FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_change()""",
            f"GRANT SELECT, INSERT ON {S}.{table} TO {FINANCE}",
            f"GRANT SELECT ON {S}.{table} TO {AUDITOR}",
        )
    ),
]

DOWNGRADE = [f"DROP TABLE {S}.verification_results", f"DROP TABLE {S}.verification_runs"]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
