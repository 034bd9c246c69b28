"""finance: the lapas of the accounts and entries added since finance_0002 — a lapas' own auditor and bendahara
see their production materials, split deductions, PNBP deposits, capital uses and payments, not only ``'*'``.

finance_0002 mapped an account to its lapas by a fixed list of kinds and gave an entry of no order (but a payout)
to ``'*'`` alone. Since then the ledger posts:

- ``asset:production_materials:<lapas>`` (a use of production capital, ``capital_use:<lapas>:<ref>``) and
  ``expense:split_deduction:<lapas>`` (a policy's fixed deductions): accounts of a lapas by their owner segment;
- ``liability:deduction_payable:<payee>`` (owed to a named payee, e.g. ``koperasi-cipinang``): like a supplier's
  payable, the name is not a lapas;
- settlements of no order: ``pnbp_deposit:<lapas>:<billing>`` (Dr pnbp_payable:<lapas>), ``capital_use:<lapas>:<ref>``
  (Dr production_materials:<lapas>), ``supplier_payment:<supplier>:<ref>`` (Dr supplier_payable:<supplier>), each
  against a shared bank account; and adjustments of no order on a lapas' accounts (an unallocated clearing).

The rule, one for every entry of no order (the posting key is not trusted to name the lapas; the lines are what
the entry moves): the entry belongs to lapas X when every line of it on an account that has a lapas is on an
account of X. What lapas an account has (:func:`finance.account_lapas`):

- a lapas' account (finance_0002's kinds, production materials, split deductions): its owner segment;
- an inmate's savings or receivable, a supplier's payable, a deduction payee's payable: the one lapas of every order
  whose entries moved it — none when the orders of two lapas did (a supplier serving two lapas: its payments stay
  with ``'*'``, since showing one lapas a payment to a supplier of both would tell it the other's amounts);
- a shared account (bank, marketplace receivables and fees, PPh 22, suspense): none.

An entry whose accounts have no lapas (a fee of no order moved to suspense) or two (a transfer between lapas) stays
with ``'*'`` alone. This also makes ``account_balances`` honest: an adjustment of no order on
``clearing:unallocated_proceeds:A`` counts in A's total and is now an entry A sees; only an entry moving the
accounts of two lapas still counts in a total its lapas cannot itemise.

Accounts: the lapas kinds gain the two new ones; a deduction payee's account is listed and totalled for the lapas it
belongs to (a supplier's payable stays listed for everyone, as before, and is totalled for its one lapas).

Both functions are ``SECURITY DEFINER`` (owned by the migrator, which bypasses RLS): they must count the orders of
every lapas — under A's scope a supplier of A and B would otherwise look like A's alone — and the entries' policy
reads the lines, whose own policy reads the entries.

Revision ID: finance_0006
Revises: finance_0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, FINANCE, SERVICE
from infra.db.steps import statement_migration

revision = "finance_0006"
down_revision = "finance_0005"
branch_labels = None
depends_on = ("ledger_0011",)

F = "finance"
L = "ledger"
# finance_0002's kinds whose owner segment is a lapas, and this migration's.
OLD_LAPAS = (
    "liability:pnbp_payable|equity:production_capital|revenue:sales"
    "|expense:(material_cost|pnbp_share|inmate_premi|capital_allocation)"
    "|clearing:(undistributed|unallocated)_proceeds"
)
LAPAS_ACCOUNTS = f"{OLD_LAPAS}|asset:production_materials|expense:split_deduction"
INMATE_ACCOUNTS = "liability:inmate_savings|asset:inmate_receivable"
# Accounts of a person or payee whose lapas is that of the orders that moved them.
MOVED_BY_ORDERS = f"{INMATE_ACCOUNTS}|liability:(supplier_payable|deduction_payable)"
DEFINER = "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp"

ACCOUNT_LAPAS = f"""CREATE FUNCTION {F}.account_lapas(code text) RETURNS text {DEFINER} AS $$
    SELECT CASE
        WHEN code ~ '^({LAPAS_ACCOUNTS}):' THEN split_part(code, ':', 3)
        WHEN code ~ '^({MOVED_BY_ORDERS}):' THEN (
            SELECT CASE WHEN count(DISTINCT o.lapas_id) = 1 THEN min(o.lapas_id) END
              FROM {L}.journal_lines l
              JOIN {L}.journal_entries e USING (sequence)
              JOIN {L}.order_facts o ON o.order_key = e.order_key
             WHERE l.account = code)
    END
$$"""
ENTRY_LAPAS = f"""CREATE FUNCTION {F}.entry_lapas(entry bigint) RETURNS text {DEFINER} AS $$
    SELECT CASE WHEN count(DISTINCT x.lapas) = 1 THEN min(x.lapas) END
      FROM (SELECT {F}.account_lapas(l.account) AS lapas FROM {L}.journal_lines l WHERE l.sequence = entry) x
     WHERE x.lapas IS NOT NULL
$$"""


def _account_in_scope(lapas_kinds: str, payees: bool) -> str:
    payee = f"WHEN code ~ '^liability:(supplier_payable|deduction_payable):' THEN {F}.sees({F}.account_lapas(code))"
    return f"""CREATE OR REPLACE FUNCTION {F}.account_in_scope(code text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN {F}.sees('*') THEN true
            WHEN code ~ '^({INMATE_ACCOUNTS}):' THEN {F}.inmate_in_scope(split_part(code, ':', 3))
            WHEN code ~ '^({lapas_kinds}):' THEN {F}.sees(split_part(code, ':', 3))
            {payee if payees else ""}
            ELSE false
        END
    $$"""


VISIBLE_ORDER = f"journal_entries.order_key IN (SELECT f.order_key FROM {L}.order_facts f)"
PAYOUT = f"""(order_key IS NULL AND posting_key LIKE 'payout:%'
            AND {F}.inmate_in_scope(split_part(posting_key, ':', 2)))"""
ENTRIES = f"{F}.sees('*') OR {VISIBLE_ORDER} OR {PAYOUT}"
ENTRIES_NOW = f"{ENTRIES} OR (order_key IS NULL AND {F}.sees({F}.entry_lapas(sequence)))"
ACCOUNTS_BEFORE = f"{F}.account_in_scope(code) OR code !~ '^({OLD_LAPAS}|{INMATE_ACCOUNTS}):'"
ACCOUNTS_NOW = (
    f"{F}.account_in_scope(code) OR code !~ '^({LAPAS_ACCOUNTS}|{INMATE_ACCOUNTS}|liability:deduction_payable):'"
)

UPGRADE = [
    ACCOUNT_LAPAS,
    ENTRY_LAPAS,
    # Each probes the lines: let the planner try the cheap conditions of a policy first.
    f"ALTER FUNCTION {F}.account_lapas(text) COST 1000",
    f"ALTER FUNCTION {F}.entry_lapas(bigint) COST 10000",
    f"COMMENT ON FUNCTION {F}.account_lapas(text) IS 'The lapas an account belongs to: its owner segment, or the one "
    "lapas of the orders that moved a person''s or payee''s account; NULL for a shared one (finance_0006)'",
    f"COMMENT ON FUNCTION {F}.entry_lapas(bigint) IS 'The one lapas of every account with a lapas an entry moves; "
    "NULL for none or two (finance_0006)'",
    *(f"REVOKE ALL ON FUNCTION {F}.{fn} FROM PUBLIC" for fn in ("account_lapas(text)", "entry_lapas(bigint)")),
    *(
        f"GRANT EXECUTE ON FUNCTION {F}.{fn} TO {FINANCE}, {SERVICE}, {AUDITOR}"
        for fn in ("account_lapas(text)", "entry_lapas(bigint)")
    ),
    _account_in_scope(LAPAS_ACCOUNTS, payees=True),
    f"ALTER POLICY lapas_scope ON {L}.journal_entries USING ({ENTRIES_NOW})",
    f"ALTER POLICY lapas_scope ON {L}.accounts USING ({ACCOUNTS_NOW})",
]

DOWNGRADE = [
    f"ALTER POLICY lapas_scope ON {L}.accounts USING ({ACCOUNTS_BEFORE})",
    f"ALTER POLICY lapas_scope ON {L}.journal_entries USING ({ENTRIES})",
    _account_in_scope(OLD_LAPAS, payees=False),
    f"DROP FUNCTION {F}.entry_lapas(bigint)",
    f"DROP FUNCTION {F}.account_lapas(text)",
]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
