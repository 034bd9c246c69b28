"""finance: the tax accounts per lapas (issue 17 item 2) are visible only to their lapas.

6ede76a added per-lapas tax kinds to the chart (``services/ledger/domain/accounts.py``), each ``<type>:<kind>:<lapas>``:
``liability:ppn_output``, ``asset:ppn_input``, ``asset:pph22_reclaimable``, ``expense:pph22_withheld``,
``expense:income_tax`` and ``liability:income_tax_payable``. finance_0007's lists did not name them, so
:func:`finance.account_lapas` gave them no lapas and :func:`finance.account_in_scope` showed them to ``'*'`` only
(and an entry of no order moving them was nobody's). Both functions are replaced with the kinds added to the list of
kinds whose code ends with the lapas; nothing else changes (the policies call the functions by name).

Revision ID: finance_0008
Revises: finance_0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.steps import statement_migration

revision = "finance_0008"
down_revision = "finance_0007"
branch_labels = None
depends_on = None

F = "finance"
L = "ledger"
# finance_0007's kinds whose code is <type>:<kind>:<lapas>, and the tax kinds this change adds.
LAPAS_0007 = (
    "liability:pnbp_payable|equity:production_capital|revenue:sales"
    "|expense:(material_cost|pnbp_share|inmate_premi|capital_allocation)"
    "|clearing:(undistributed|unallocated)_proceeds|asset:production_materials|expense:split_deduction"
    "|asset:pph22_prepaid|clearing:suspense"
)
TAX = (
    "liability:(ppn_output|income_tax_payable)|asset:(ppn_input|pph22_reclaimable)|expense:(pph22_withheld|income_tax)"
)
# Kinds whose code is <type>:<kind>:<lapas>:<owner> (finance_0007's, unchanged).
WITHIN_LAPAS = (
    "^(asset:bank|asset:marketplace_receivable|expense:marketplace_fee"
    "|liability:supplier_payable|liability:deduction_payable):[^:]+:[^:]+$"
)
INMATE_ACCOUNTS = "^(liability:inmate_savings|asset:inmate_receivable):"
LEGACY_PAYEES = "^liability:(supplier_payable|deduction_payable):[^:]+$"
DEFINER = "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
MOVED_BY_ORDERS = f"""(
            SELECT CASE WHEN count(DISTINCT o.lapas_id) = 1 THEN min(o.lapas_id) END
              FROM {L}.journal_lines l
              JOIN {L}.journal_entries e USING (sequence)
              JOIN {L}.order_facts o ON o.order_key = e.order_key
             WHERE l.account = code)"""


def _functions(lapas_kinds: str, revision_name: str) -> list[str]:
    """finance.account_lapas and finance.account_in_scope with ``lapas_kinds`` as the kinds whose code ends with the
    lapas (finance_0007's shape), with their cost and comment."""
    lapas_only = f"^({lapas_kinds}):[^:]+$"
    return [
        f"""CREATE OR REPLACE FUNCTION {F}.account_lapas(code text) RETURNS text {DEFINER} AS $$
    SELECT CASE
        WHEN code ~ '{lapas_only}' OR code ~ '{WITHIN_LAPAS}' THEN split_part(code, ':', 3)
        WHEN code ~ '{INMATE_ACCOUNTS}' OR code ~ '{LEGACY_PAYEES}' THEN {MOVED_BY_ORDERS}
    END
$$""",
        f"ALTER FUNCTION {F}.account_lapas(text) COST 1000",
        f"COMMENT ON FUNCTION {F}.account_lapas(text) IS 'The lapas an account belongs to: the lapas segment of a "
        "per-lapas code (services/ledger/domain/accounts.py account_lapas), or the one lapas of the orders that moved "
        f"an inmate''s account or a legacy supplier or payee payable; NULL for a legacy global code ({revision_name})'",
        f"""CREATE OR REPLACE FUNCTION {F}.account_in_scope(code text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN {F}.sees('*') THEN true
            WHEN code ~ '{INMATE_ACCOUNTS}' THEN {F}.inmate_in_scope(split_part(code, ':', 3))
            WHEN code ~ '{lapas_only}' OR code ~ '{WITHIN_LAPAS}' THEN {F}.sees(split_part(code, ':', 3))
            WHEN code ~ '{LEGACY_PAYEES}' THEN {F}.sees({F}.account_lapas(code))
            ELSE false
        END
    $$""",
    ]


upgrade, downgrade = statement_migration(
    _functions(f"{LAPAS_0007}|{TAX}", "finance_0008"), _functions(LAPAS_0007, "finance_0007")
)
