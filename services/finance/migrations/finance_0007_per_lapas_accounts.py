"""finance: per-lapas accounts (issue 17 item 1) — a lapas' bank, receivables, PPh 22, fees, suspense, supplier and
deduction payables are visible only to that lapas.

The ledger now books every account a sale touches in the sale's lapas (``services/ledger/domain/accounts.py``, the
one place that parses codes; its ``account_lapas`` is what this mirrors in SQL):

- ``<type>:<kind>:<lapas>`` — finance_0006's lapas kinds, and now ``asset:pph22_prepaid:<lapas>`` and
  ``clearing:suspense:<lapas>`` (``unknown`` for a sale of no known lapas);
- ``<type>:<kind>:<lapas>:<owner>`` — ``asset:bank:<lapas>:<account>``,
  ``asset:marketplace_receivable:<lapas>:<channel>``, ``expense:marketplace_fee:<lapas>:<fee type>``,
  ``liability:supplier_payable:<lapas>:<supplier>``, ``liability:deduction_payable:<lapas>:<payee>``;
- an inmate's savings and receivable: still the one lapas of the orders that moved them (finance_0006).

Old journals keep their global codes (the journal is append-only): ``asset:bank:main``, ``asset:pph22_prepaid``,
``clearing:suspense``, ``asset:marketplace_receivable:<channel>``, ``expense:marketplace_fee:<fee type>`` have no
lapas (listed for everyone, totalled for ``'*'`` only, as finance_0002 had them); a legacy
``liability:supplier_payable:<supplier>`` or ``liability:deduction_payable:<payee>`` keeps finance_0006's rule (the
one lapas of the orders that moved it). :func:`finance.account_lapas` and :func:`finance.account_in_scope` are
replaced; :func:`finance.entry_lapas` is unchanged and so now places a settlement of no order (a supplier payment
``Dr liability:supplier_payable:<lapas>:<supplier> / Cr asset:bank:<lapas>:main``) in its lapas by its codes alone.

Revision ID: finance_0007
Revises: finance_0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "finance_0007"
down_revision = "finance_0006"
branch_labels = None
depends_on = None

F = "finance"
L = "ledger"
# finance_0006's lapas kinds (owner segment = lapas), and the two this change adds.
LAPAS_0006 = (
    "liability:pnbp_payable|equity:production_capital|revenue:sales"
    "|expense:(material_cost|pnbp_share|inmate_premi|capital_allocation)"
    "|clearing:(undistributed|unallocated)_proceeds|asset:production_materials|expense:split_deduction"
)
LAPAS_ONLY = f"^({LAPAS_0006}|asset:pph22_prepaid|clearing:suspense):[^:]+$"
# Kinds whose code is <type>:<kind>:<lapas>:<owner>.
WITHIN_LAPAS = (
    "^(asset:bank|asset:marketplace_receivable|expense:marketplace_fee"
    "|liability:supplier_payable|liability:deduction_payable):[^:]+:[^:]+$"
)
INMATE_ACCOUNTS = "^(liability:inmate_savings|asset:inmate_receivable):"
LEGACY_PAYEES = "^liability:(supplier_payable|deduction_payable):[^:]+$"
# Legacy global codes of no lapas (names that tell nothing): listed for everyone.
LEGACY_SHARED = (
    "^((asset:bank|asset:marketplace_receivable|expense:marketplace_fee|liability:supplier_payable):[^:]+"
    "|asset:pph22_prepaid|clearing:suspense)$"
)
DEFINER = "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
MOVED_BY_ORDERS = f"""(
            SELECT CASE WHEN count(DISTINCT o.lapas_id) = 1 THEN min(o.lapas_id) END
              FROM {L}.journal_lines l
              JOIN {L}.journal_entries e USING (sequence)
              JOIN {L}.order_facts o ON o.order_key = e.order_key
             WHERE l.account = code)"""

ACCOUNT_LAPAS = f"""CREATE OR REPLACE FUNCTION {F}.account_lapas(code text) RETURNS text {DEFINER} AS $$
    SELECT CASE
        WHEN code ~ '{LAPAS_ONLY}' OR code ~ '{WITHIN_LAPAS}' THEN split_part(code, ':', 3)
        WHEN code ~ '{INMATE_ACCOUNTS}' OR code ~ '{LEGACY_PAYEES}' THEN {MOVED_BY_ORDERS}
    END
$$"""
ACCOUNT_IN_SCOPE = f"""CREATE OR REPLACE FUNCTION {F}.account_in_scope(code text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN {F}.sees('*') THEN true
            WHEN code ~ '{INMATE_ACCOUNTS}' THEN {F}.inmate_in_scope(split_part(code, ':', 3))
            WHEN code ~ '{LAPAS_ONLY}' OR code ~ '{WITHIN_LAPAS}' THEN {F}.sees(split_part(code, ':', 3))
            WHEN code ~ '{LEGACY_PAYEES}' THEN {F}.sees({F}.account_lapas(code))
            ELSE false
        END
    $$"""
ACCOUNTS_NOW = f"{F}.account_in_scope(code) OR code ~ '{LEGACY_SHARED}'"

# finance_0006's definitions, restored by the downgrade.
OLD_LAPAS = LAPAS_0006
OLD_MOVED = "liability:inmate_savings|asset:inmate_receivable|liability:(supplier_payable|deduction_payable)"
OLD_ACCOUNT_LAPAS = f"""CREATE OR REPLACE FUNCTION {F}.account_lapas(code text) RETURNS text {DEFINER} AS $$
    SELECT CASE
        WHEN code ~ '^({OLD_LAPAS}):' THEN split_part(code, ':', 3)
        WHEN code ~ '^({OLD_MOVED}):' THEN {MOVED_BY_ORDERS}
    END
$$"""
OLD_ACCOUNT_IN_SCOPE = f"""CREATE OR REPLACE FUNCTION {F}.account_in_scope(code text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN {F}.sees('*') THEN true
            WHEN code ~ '{INMATE_ACCOUNTS}' THEN {F}.inmate_in_scope(split_part(code, ':', 3))
            WHEN code ~ '^({OLD_LAPAS}):' THEN {F}.sees(split_part(code, ':', 3))
            WHEN code ~ '^liability:(supplier_payable|deduction_payable):' THEN {F}.sees({F}.account_lapas(code))
            ELSE false
        END
    $$"""
OLD_ACCOUNTS = (
    f"{F}.account_in_scope(code) OR code !~ "
    f"'^({OLD_LAPAS}|liability:inmate_savings|asset:inmate_receivable|liability:deduction_payable):'"
)

UPGRADE = [
    ACCOUNT_LAPAS,
    f"ALTER FUNCTION {F}.account_lapas(text) COST 1000",
    f"COMMENT ON FUNCTION {F}.account_lapas(text) IS 'The lapas an account belongs to: the lapas segment of a "
    "per-lapas code (services/ledger/domain/accounts.py account_lapas), or the one lapas of the orders that moved an "
    "inmate''s account or a legacy supplier or payee payable; NULL for a legacy global code (finance_0007)'",
    ACCOUNT_IN_SCOPE,
    f"ALTER POLICY lapas_scope ON {L}.accounts USING ({ACCOUNTS_NOW})",
]

DOWNGRADE = [
    f"ALTER POLICY lapas_scope ON {L}.accounts USING ({OLD_ACCOUNTS})",
    OLD_ACCOUNT_IN_SCOPE,
    OLD_ACCOUNT_LAPAS,
    f"ALTER FUNCTION {F}.account_lapas(text) COST 1000",
    f"COMMENT ON FUNCTION {F}.account_lapas(text) IS 'The lapas an account belongs to: its owner segment, or the one "
    "lapas of the orders that moved a person''s or payee''s account; NULL for a shared one (finance_0006)'",
]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
