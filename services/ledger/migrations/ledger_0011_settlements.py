"""ledger: settling what is owed (PNBP deposits, supplier payments, use of production capital) as proposals, and a
yes/no registry check of an inmate payout's payee.

Revision ID: ledger_0011
Revises: ledger_0010
Create Date: 2026-12-03

Settlements reuse the corrections' four-eyes machinery (``ledger_0007``, ``ledger_0009``): a settlement is a row of
``ledger.correction_proposals`` of a new kind — ``pnbp_deposit``, ``supplier_payment`` or ``capital_use`` — whose
``entry`` carries the posting key it will post under (``pnbp_deposit:<lapas>:<billing code>``, …); its approval and
closures are the same append-only rows with the same triggers (``four_eyes``, ``decide_once``, ``withdraw_own``).
An expression index finds the proposals of a posting key (a settlement is proposed once per key).

``ledger.registry_payee(inmate, registration_no, full_name, on_day)`` answers whether the pseudonymous ``inmate``
is the person a payout names, from ``orders.inmate_registry`` (``orders_0002``), which neither the service nor the
auditor may read: the function is owned by the migrator (``SECURITY DEFINER``, fixed ``search_path``) and returns
only a verdict — ``unknown`` (no registry row), ``mismatch`` (the registration number, or the name when one is
given, differs), ``released`` (the person was released on or before ``on_day``) or ``in_custody`` — never a name,
number or date. Only the service role may call it (not the auditor, who reads no personal data).
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, SERVICE
from infra.db.steps import statement_migration

revision = "ledger_0011"
down_revision = "ledger_0010"
branch_labels = None
depends_on = ("orders_0002",)

S = "ledger"
O = "orders"  # noqa: E741 - the registry's schema, as orders_0002 names it
KINDS_BEFORE = "'revert', 'adjust'"
KINDS = "'revert', 'adjust', 'pnbp_deposit', 'supplier_payment', 'capital_use'"
REGISTRY_PAYEE = f"{S}.registry_payee(text, text, text, date)"


def _kinds(kinds: str) -> list[str]:
    return [
        f"ALTER TABLE {S}.correction_proposals DROP CONSTRAINT correction_proposals_kind_check",
        f"ALTER TABLE {S}.correction_proposals ADD CONSTRAINT correction_proposals_kind_check "
        f"CHECK (kind IN ({kinds}))",
    ]


def _same(column: str, given: str) -> str:
    """Registration numbers compare without blanks and case; names with blanks collapsed and without case."""
    if column == "registration_no":
        return f"upper(regexp_replace(r.{column}, '\\s', '', 'g')) = upper(regexp_replace({given}, '\\s', '', 'g'))"
    blanks = "'\\s+', ' ', 'g'"
    return f"lower(regexp_replace(btrim(r.{column}), {blanks})) = lower(regexp_replace(btrim({given}), {blanks}))"


UP = [
    *_kinds(KINDS),
    f"""CREATE INDEX correction_proposals_posting_key_idx ON {S}.correction_proposals ((entry ->> 'posting_key'))
        WHERE entry ? 'posting_key'""",
    f"""CREATE FUNCTION {REGISTRY_PAYEE} RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        SELECT CASE
            WHEN r.inmate_id IS NULL THEN 'unknown'
            WHEN NOT {_same("registration_no", "$2")} OR ($3 IS NOT NULL AND NOT {_same("full_name", "$3")})
                THEN 'mismatch'
            WHEN r.released_on IS NOT NULL AND r.released_on <= $4 THEN 'released'
            ELSE 'in_custody'
        END
        FROM (SELECT 1) one LEFT JOIN {O}.inmate_registry r ON r.inmate_id = $1
    $$""",
    f"COMMENT ON FUNCTION {REGISTRY_PAYEE} IS 'Whether a pseudonymous inmate id is the person a payout names: "
    "unknown, mismatch, released or in_custody; never returns personal data (ledger_0011)'",
    # The default privileges give the auditor EXECUTE on the migrator's functions: not this one (personal data).
    f"REVOKE ALL ON FUNCTION {REGISTRY_PAYEE} FROM PUBLIC, {AUDITOR}",
    f"GRANT EXECUTE ON FUNCTION {REGISTRY_PAYEE} TO {SERVICE}",
]

DOWN = [
    f"DROP FUNCTION {REGISTRY_PAYEE}",
    f"DROP INDEX {S}.correction_proposals_posting_key_idx",
    *_kinds(KINDS_BEFORE),
]

upgrade, downgrade = statement_migration(UP, DOWN)
