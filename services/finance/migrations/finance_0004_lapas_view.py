"""finance: the lapas the workspace may name, with their province (``finance.lapas``), for the lapas' own time zone.

The catalogue (``orders.lapas``) records each lapas' province; ``karya_finance`` has no privilege on the orders
schema and gets none here. ``finance.lapas`` is a view owned by the migrator (so it reads the catalogue with the
owner's privileges) that shows the id, name and province of the lapas the transaction's scope covers
(``finance.sees``, ``finance_0002``): one row for an ``auditor_lapas`` or ``bendahara``, every lapas for ``'*'``,
none without a scope. ``security_barrier`` keeps a caller's functions from seeing rows before the scope filter.
The zone is not stored: the workspace derives it from the province with its configuration
(:data:`services.presentation.zones.PROVINCE_ZONES` and per-lapas overrides), so a zone fix needs no
migration.

Revision ID: finance_0004
Revises: finance_0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from infra.db.roles import FINANCE
from infra.db.steps import statement_migration

revision = "finance_0004"
down_revision = "finance_0003"
branch_labels = None
depends_on = ("orders_0002",)

F = "finance"
O = "orders"  # noqa: E741 - the catalogue's schema, as orders_0002 names it

UPGRADE = [
    f"""CREATE VIEW {F}.lapas WITH (security_barrier = true) AS
        SELECT l.lapas_id, l.name, l.province FROM {O}.lapas l WHERE {F}.sees(l.lapas_id)""",
    f"COMMENT ON VIEW {F}.lapas IS 'The catalogue''s lapas (id, name, province) in the transaction''s lapas scope "
    "(karya.lapas_scope): what the finance workspace reads to show times in a lapas'' own zone (finance_0004)'",
    f"GRANT SELECT ON {F}.lapas TO {FINANCE}",
]
DOWNGRADE = [f"DROP VIEW {F}.lapas"]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
