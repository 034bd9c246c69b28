"""gateway: the gateway schema belongs to the gateway's own role; the service role reads it without personal data.

Until now every service connected as ``karya_service``, so orders and ledger could read the raw webhook bodies
(buyer name, phone, address) in ``gateway.raw_deliveries`` and the dead-lettered delivery events in
``gateway.dead_letters.payload``. The gateway now connects as ``karya_gateway`` (``KARYA_GATEWAY_DATABASE_URL``):

- ``karya_gateway`` receives, object by object, every privilege ``karya_service`` held in the schema (tables,
  views, sequences, functions: inbox, outbox, dead letters, raw deliveries, emitted events, status, cursors and
  the retention functions), plus default privileges for what later gateway migrations create;
- ``karya_service`` keeps SELECT on everything but the personal data (the demo's counters and the completeness
  audit read ``gateway.inbox``, ``gateway.outbox`` and the dead letters' origin columns) and loses every write:
  nothing outside the gateway writes its schema. It loses ``gateway.raw_deliveries`` entirely (the redacted view
  ``gateway.raw_deliveries_redacted`` stays readable), SELECT on ``gateway.dead_letters.payload`` and the
  retention functions.

The migrator's default privileges still give ``karya_service`` SELECT and INSERT on tables created later in this
schema (PostgreSQL cannot take a database-wide default back for one schema): a later migration adding personal
data here revokes them, as this one does.

Revision ID: gateway_0006
Revises: gateway_0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import GATEWAY, MIGRATOR, SERVICE
from infra.db.steps import statement_migration

revision = "gateway_0006"
down_revision = "gateway_0005"

S = "gateway"
# What the service role may still read of a dead letter (everything but the payload; see gateway_0005).
VISIBLE = 'id, consumer, topic, "partition", "offset", event_id, key, headers, error, attempts, created_at'
RETENTION_FUNCTIONS = (f"{S}.redact_raw_deliveries(interval, integer)", f"{S}.redact_dead_letters(interval, integer)")

# Copy the service role's privileges on every relation and function of the schema to the gateway role.
COPY_PRIVILEGES = f"""DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
               string_agg(DISTINCT a.privilege_type, ', ') AS privileges
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
        WHERE n.nspname = '{S}' AND a.grantee = '{SERVICE}'::regrole
        GROUP BY c.oid, c.relkind
    LOOP
        EXECUTE format('GRANT %s ON %s %s TO {GATEWAY}', r.privileges, r.kind, r.rel);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS fn
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
        WHERE n.nspname = '{S}' AND a.grantee = '{SERVICE}'::regrole AND a.privilege_type = 'EXECUTE'
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {GATEWAY}', r.fn);
    END LOOP;
END $$"""

UPGRADE = [
    f"GRANT USAGE ON SCHEMA {S} TO {GATEWAY}",
    COPY_PRIVILEGES,
    f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} IN SCHEMA {S} GRANT SELECT, INSERT ON TABLES TO {GATEWAY}",
    f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} IN SCHEMA {S} GRANT USAGE, SELECT ON SEQUENCES TO {GATEWAY}",
    f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} IN SCHEMA {S} GRANT EXECUTE ON FUNCTIONS TO {GATEWAY}",
    # The service role: reads what is not personal, writes nothing here.
    f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {S} FROM {SERVICE}",
    f"REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA {S} FROM {SERVICE}",
    f"REVOKE ALL ON {S}.raw_deliveries FROM {SERVICE}",
    f"REVOKE SELECT ON {S}.dead_letters FROM {SERVICE}",
    f"GRANT SELECT ({VISIBLE}, payload_redacted_at) ON {S}.dead_letters TO {SERVICE}",
    *(f"REVOKE EXECUTE ON FUNCTION {fn} FROM {SERVICE}" for fn in RETENTION_FUNCTIONS),
]

DOWNGRADE = [
    *(f"GRANT EXECUTE ON FUNCTION {fn} TO {SERVICE}" for fn in RETENTION_FUNCTIONS),
    f"REVOKE SELECT ON {S}.dead_letters FROM {SERVICE}",
    f"GRANT SELECT ON {S}.dead_letters TO {SERVICE}",
    f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {S} TO {SERVICE}",
    f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {S} TO {SERVICE}",
    f"REVOKE SELECT, INSERT ON {S}.raw_deliveries_redacted FROM {SERVICE}",
    f"GRANT SELECT ON {S}.raw_deliveries_redacted TO {SERVICE}",
    f"GRANT UPDATE, DELETE ON {S}.outbox, {S}.inbox TO {SERVICE}",
    f"GRANT UPDATE ON {S}.order_status_seen, {S}.poll_cursors TO {SERVICE}",
    f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} IN SCHEMA {S} REVOKE EXECUTE ON FUNCTIONS FROM {GATEWAY}",
    f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} IN SCHEMA {S} REVOKE USAGE, SELECT ON SEQUENCES FROM {GATEWAY}",
    f"ALTER DEFAULT PRIVILEGES FOR ROLE {MIGRATOR} IN SCHEMA {S} REVOKE SELECT, INSERT ON TABLES FROM {GATEWAY}",
    f"REVOKE ALL ON ALL TABLES IN SCHEMA {S} FROM {GATEWAY}",
    f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {S} FROM {GATEWAY}",
    f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {S} FROM {GATEWAY}",
    f"REVOKE USAGE ON SCHEMA {S} FROM {GATEWAY}",
]


upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
