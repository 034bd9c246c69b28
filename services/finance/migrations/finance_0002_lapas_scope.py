"""finance: the workspace reads the ledger as ``karya_finance``, one lapas per transaction, by row-level security.

The workspace sets ``karya.lapas_scope`` in every transaction (``SET LOCAL``; :mod:`services.finance.scope`):
``'*'`` for every lapas, else one lapas id; unset or empty, the policies below let nothing through. What a row's
lapas is, from what the ledger already holds (no column is added; the posting path is unchanged):

- ``ledger.order_facts``, ``ledger.split_policies``: their ``lapas_id``;
- ``ledger.journal_entries``: an entry of an order belongs to the order's lapas (its ``order_facts`` row, itself
  under this policy); a savings payout (``payout:<WBP>:<id>``) to the inmate's lapas; any other entry without an
  order (an adjustment of no order) only to ``'*'``;
- ``ledger.journal_lines``: visible when its entry is (the sub-select runs under the entries' policy);
- ``ledger.accounts``: an account of a lapas (``revenue:sales:<lapas>``, ``liability:pnbp_payable:<lapas>``, the
  distribution expenses, production capital, the undistributed and unallocated clearings) to that lapas; an
  inmate's savings and receivable to the inmate's lapas; the shared accounts (bank, marketplace receivables and
  fees, PPh 22, suspense, supplier payables) to everyone, since their names tell nothing;
- ``ledger.account_balances``: the accounts of the scope's lapas only — a shared account's total mixes every
  lapas; the workspace sums the visible lines instead;
- ``ledger.pending_events`` (parked), ``ledger.closed_without_posting``: by their order, like entries.

An inmate's lapas is the lapas of the orders whose entries moved their savings or receivable
(:func:`finance.inmate_in_scope`, ``SECURITY DEFINER`` so that it reads past the policies it serves).

Other roles are not scoped: the service and the auditor get a permissive ``USING (true)`` policy on each table
(the owner, the migrator, bypasses RLS; so do the ``SECURITY DEFINER`` balance trigger and the superuser).
``karya_finance`` gets SELECT on exactly these tables — never on ``gateway.raw_deliveries`` — and reads webhook
deliveries through ``finance.deliveries_redacted``: the gateway's redacted view (no buyer name, phone, address;
``gateway_0004``) without headers, limited to the orders of the scope. It also takes over the workspace's own
tables of ``finance_0001`` (users, sessions, audit log) with the service role's privileges on them.

The scope is a setting the connected role can change itself: it keeps the workspace's own queries in their lapas
(a query that forgets the lapas still returns only the viewer's rows), not a client holding the role's password.

Revision ID: finance_0002
Revises: finance_0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, FINANCE, SERVICE
from infra.db.steps import statement_migration

revision = "finance_0002"
down_revision = "finance_0001"
branch_labels = None
depends_on = ("ledger_0009", "gateway_0006")

F = "finance"
L = "ledger"
G = "gateway"
SCOPE = "current_setting('karya.lapas_scope', true)"
# Account kinds whose owner segment is a lapas id (services/ledger/domain/accounts.py).
LAPAS_ACCOUNTS = (
    "liability:pnbp_payable|equity:production_capital|revenue:sales"
    "|expense:(material_cost|pnbp_share|inmate_premi|capital_allocation)"
    "|clearing:(undistributed|unallocated)_proceeds"
)
INMATE_ACCOUNTS = "liability:inmate_savings|asset:inmate_receivable"
SCOPED = (
    "order_facts",
    "split_policies",
    "journal_entries",
    "journal_lines",
    "accounts",
    "account_balances",
    "pending_events",
    "closed_without_posting",
)
# Uncorrelated sub-selects: the planner hashes the visible keys once per query instead of probing per row.
VISIBLE_ORDER = f"{{table}}.order_key IN (SELECT f.order_key FROM {L}.order_facts f)"
POLICIES = {
    "order_facts": f"{F}.sees(lapas_id)",
    "split_policies": f"{F}.sees(lapas_id)",
    "journal_entries": f"""{F}.sees('*') OR {VISIBLE_ORDER.format(table="journal_entries")}
        OR (order_key IS NULL AND posting_key LIKE 'payout:%'
            AND {F}.inmate_in_scope(split_part(posting_key, ':', 2)))""",
    "journal_lines": f"""{F}.sees('*')
        OR journal_lines.sequence IN (SELECT e.sequence FROM {L}.journal_entries e)""",
    "accounts": f"{F}.account_in_scope(code) OR code !~ '^({LAPAS_ACCOUNTS}|{INMATE_ACCOUNTS}):'",
    "account_balances": f"{F}.account_in_scope(account)",
    "pending_events": f"{F}.sees('*') OR {VISIBLE_ORDER.format(table='pending_events')}",
    "closed_without_posting": f"{F}.sees('*') OR {VISIBLE_ORDER.format(table='closed_without_posting')}",
}
OWN_TABLES = {
    "users": "SELECT, INSERT, UPDATE",
    "sessions": "SELECT, INSERT, UPDATE, DELETE",
    "audit_log": "SELECT, INSERT",
}

FUNCTIONS = [
    f"""CREATE FUNCTION {F}.sees(lapas text) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce({SCOPE} = '*' OR (lapas IS NOT NULL AND lapas = {SCOPE}), false)""",
    f"COMMENT ON FUNCTION {F}.sees(text) IS 'Whether the transaction''s lapas scope (karya.lapas_scope) covers a "
    "lapas: ''*'' covers all, an unset scope none (finance_0002)'",
    f"""CREATE FUNCTION {F}.inmate_in_scope(inmate text) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        SELECT {F}.sees('*') OR EXISTS (
            SELECT 1 FROM {L}.journal_lines l
              JOIN {L}.journal_entries e USING (sequence)
              JOIN {L}.order_facts o ON o.order_key = e.order_key
             WHERE l.account IN ('liability:inmate_savings:' || inmate, 'asset:inmate_receivable:' || inmate)
               AND {F}.sees(o.lapas_id))
    $$""",
    f"""CREATE FUNCTION {F}.account_in_scope(code text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN {F}.sees('*') THEN true
            WHEN code ~ '^({INMATE_ACCOUNTS}):' THEN {F}.inmate_in_scope(split_part(code, ':', 3))
            WHEN code ~ '^({LAPAS_ACCOUNTS}):' THEN {F}.sees(split_part(code, ':', 3))
            ELSE false
        END
    $$""",
    f"REVOKE ALL ON FUNCTION {F}.inmate_in_scope(text) FROM PUBLIC",
    *(
        f"GRANT EXECUTE ON FUNCTION {F}.{fn} TO {FINANCE}, {SERVICE}, {AUDITOR}"
        for fn in ("sees(text)", "inmate_in_scope(text)", "account_in_scope(text)")
    ),
]

VIEW = [
    f"""CREATE VIEW {F}.deliveries_redacted WITH (security_barrier) AS
    SELECT d.delivery_id, d.channel, d.webhook_type, d.order_key, d.received_at, d.signature_verified,
           d.body_bytes, d.body_sha256, d.redacted_at, d.body
      FROM {G}.raw_deliveries_redacted d
     WHERE {F}.sees('*') OR EXISTS (
           SELECT 1 FROM {L}.order_facts f WHERE f.order_key = d.order_key AND {F}.sees(f.lapas_id))""",
    f"COMMENT ON VIEW {F}.deliveries_redacted IS 'Webhook deliveries of the orders in the lapas scope, without "
    "personal data or headers: what the finance workspace reads (finance_0002)'",
    f"REVOKE ALL ON {F}.deliveries_redacted FROM {SERVICE}",
    # The redaction functions the gateway's view calls run as the caller, who must see their schema (no table of
    # it is granted).
    f"GRANT USAGE ON SCHEMA {G} TO {FINANCE}",
    f"GRANT SELECT ON {F}.deliveries_redacted TO {FINANCE}, {AUDITOR}",
]


def _policies() -> list[str]:
    statements = []
    for table in SCOPED:
        statements += [
            f"ALTER TABLE {L}.{table} ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY karya_roles ON {L}.{table} TO {SERVICE}, {AUDITOR} USING (true) WITH CHECK (true)",
            f"CREATE POLICY lapas_scope ON {L}.{table} FOR SELECT TO {FINANCE} USING ({POLICIES[table]})",
        ]
    return statements


UPGRADE = [
    *FUNCTIONS,
    *_policies(),
    f"GRANT USAGE ON SCHEMA {F}, {L} TO {FINANCE}",
    f"GRANT SELECT ON {', '.join(f'{L}.{t}' for t in SCOPED)}, {L}.chain_head TO {FINANCE}",
    *VIEW,
    *(f"GRANT {privileges} ON {F}.{table} TO {FINANCE}" for table, privileges in OWN_TABLES.items()),
]

DOWNGRADE = [
    *(f"REVOKE ALL ON {F}.{table} FROM {FINANCE}" for table in OWN_TABLES),
    f"DROP VIEW {F}.deliveries_redacted",
    f"REVOKE USAGE ON SCHEMA {G} FROM {FINANCE}",
    f"REVOKE ALL ON {', '.join(f'{L}.{t}' for t in SCOPED)}, {L}.chain_head FROM {FINANCE}",
    f"REVOKE USAGE ON SCHEMA {F}, {L} FROM {FINANCE}",
    *(
        statement
        for table in SCOPED
        for statement in (
            f"DROP POLICY lapas_scope ON {L}.{table}",
            f"DROP POLICY karya_roles ON {L}.{table}",
            f"ALTER TABLE {L}.{table} DISABLE ROW LEVEL SECURITY",
        )
    ),
    f"DROP FUNCTION {F}.account_in_scope(text)",
    f"DROP FUNCTION {F}.inmate_in_scope(text)",
    f"DROP FUNCTION {F}.sees(text)",
]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
