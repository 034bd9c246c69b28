"""finance: the workspace reads the PPh 22 withholding slips and the tax settings (ledger_0013) of its lapas only.

``ledger.withholding_slips`` (one row per settlement that withheld PPh 22, flagged when the amount is off 0.5% of
the price excluding PPN by more than the lapas' tolerance) and ``ledger.tax_settings`` (each lapas' versioned tax
treatment) both carry their ``lapas_id``; they come under finance_0002's rule for ``split_policies``: row-level
security with the permissive ``karya_roles`` policy for the service and the auditor (the posting path and
``karya policy load`` write them as before; the owner bypasses RLS) and ``lapas_scope`` for ``karya_finance``,
which sees a row when the transaction's scope covers its lapas (:func:`finance.sees`). ``karya_finance`` gets SELECT
on both and nothing else.

Revision ID: finance_0009
Revises: finance_0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.roles import AUDITOR, FINANCE, SERVICE
from infra.db.steps import statement_migration

revision = "finance_0009"
down_revision = "finance_0008"
branch_labels = None
depends_on = ("ledger_0013",)

F = "finance"
L = "ledger"
TABLES = ("withholding_slips", "tax_settings")

UPGRADE = [
    *(
        statement
        for table in TABLES
        for statement in (
            f"ALTER TABLE {L}.{table} ENABLE ROW LEVEL SECURITY",
            f"CREATE POLICY karya_roles ON {L}.{table} TO {SERVICE}, {AUDITOR} USING (true) WITH CHECK (true)",
            f"CREATE POLICY lapas_scope ON {L}.{table} FOR SELECT TO {FINANCE} USING ({F}.sees(lapas_id))",
        )
    ),
    f"GRANT SELECT ON {', '.join(f'{L}.{t}' for t in TABLES)} TO {FINANCE}",
]
DOWNGRADE = [
    f"REVOKE ALL ON {', '.join(f'{L}.{t}' for t in TABLES)} FROM {FINANCE}",
    *(
        statement
        for table in TABLES
        for statement in (
            f"DROP POLICY lapas_scope ON {L}.{table}",
            f"DROP POLICY karya_roles ON {L}.{table}",
            f"ALTER TABLE {L}.{table} DISABLE ROW LEVEL SECURITY",
        )
    ),
]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
