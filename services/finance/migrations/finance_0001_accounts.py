"""finance: the workspace's schema — accounts, sessions and the append-only audit log (issue 16 item 4).

- ``finance.users``: one account per name, its role and lapas (``auditor_lapas`` and ``bendahara`` exactly one,
  ``auditor_pusat`` and ``admin`` none: a CHECK constraint), the argon2id hash, when it was disabled;
- ``finance.sessions``: the SHA-256 of each session token (never the token), its user, when it was last used
  (idle expiry is a comparison with ``last_seen_at``);
- ``finance.audit_log``: who did what to what, when and from where (logins, failed logins, exports, approvals);
  row triggers refuse UPDATE and DELETE and a statement trigger TRUNCATE, for every role.

The service role (what ``karya serve finance`` connects as) inserts and reads, updates users and sessions, deletes
sessions; the auditor reads the audit log and the accounts without their password hashes, never the sessions.

The finance branch is shared: this migration is ``finance_0001``; ``finance_0002`` and later (row-level security
on what the workspace reads, the redacted views) belong to the read API's work and revise this one in turn.

Revision ID: finance_0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, mutable_table_grants, schema_grants
from infra.db.steps import statement_migration

revision = "finance_0001"
down_revision = None
branch_labels = ("finance",)

S = "finance"
ROLES = "'auditor_pusat', 'auditor_lapas', 'bendahara', 'admin'"

UPGRADE = [
    f"CREATE SCHEMA {S}",
    *schema_grants(S),
    f"""CREATE TABLE {S}.users (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name text NOT NULL UNIQUE CHECK (name ~ '^\\S{{1,64}}$'),
        role text NOT NULL CHECK (role IN ({ROLES})),
        lapas text,
        password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
        created_at timestamptz NOT NULL DEFAULT now(),
        disabled_at timestamptz,
        CONSTRAINT users_lapas_scope CHECK (
            (role IN ('auditor_lapas', 'bendahara')) = (lapas IS NOT NULL)))""",
    f"""CREATE TABLE {S}.sessions (
        token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
        user_id bigint NOT NULL REFERENCES {S}.users ON DELETE CASCADE,
        ip text,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now())""",
    f"CREATE INDEX sessions_last_seen_idx ON {S}.sessions (last_seen_at)",
    f"CREATE INDEX sessions_user_idx ON {S}.sessions (user_id)",
    f"""CREATE TABLE {S}.audit_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        actor text NOT NULL,
        user_id bigint REFERENCES {S}.users,
        role text,
        lapas text,
        action text NOT NULL CHECK (action <> ''),
        subject text NOT NULL,
        ip text)""",
    f"CREATE INDEX audit_log_failures_idx ON {S}.audit_log (actor, ip, at) WHERE action = 'login_failed'",
    f"""CREATE FUNCTION {S}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the audit log is append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
        END $$""",
    f"""CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON {S}.audit_log
        FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change()""",
    f"""CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON {S}.audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION {S}.refuse_change()""",
    *mutable_table_grants(S, "users"),
    *mutable_table_grants(S, "sessions", delete=True),
    # The auditor reads accounts without their hashes, and no session tokens.
    f"REVOKE ALL ON {S}.users, {S}.sessions FROM {AUDITOR}",
    f"GRANT SELECT (id, name, role, lapas, created_at, disabled_at) ON {S}.users TO {AUDITOR}",
]

DOWNGRADE = [f"DROP SCHEMA {S} CASCADE"]


upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
