"""finance: the production batches and their work groups the workspace may name (``finance.batches``,
``finance.batch_work_group``), for the drill-down from an inmate's savings line to the batch it was earned on.

The catalogue (``orders.production_batches``, ``orders.batch_work_group``, ``orders.workshops``) is the orders
service's; ``karya_finance`` has no privilege on the orders schema and gets none here. Like ``finance.lapas``
(``finance_0004``), both are views owned by the migrator (so they read the catalogue with the owner's privileges)
that show only the batches of the workshops of the lapas the transaction's scope covers (``finance.sees``,
``finance_0002``): a batch of another lapas is simply absent. ``security_barrier`` keeps a caller's functions from
seeing rows before the scope filter. A work group names its inmates by their pseudonymous id only: nothing of
``orders.inmate_registry`` (names, registration numbers) is joined.

Revision ID: finance_0005
Revises: finance_0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from infra.db.roles import FINANCE
from infra.db.steps import statement_migration

revision = "finance_0005"
down_revision = "finance_0004"
branch_labels = None
depends_on = ("orders_0002",)

F = "finance"
O = "orders"  # noqa: E741 - the catalogue's schema, as orders_0002 names it
IN_SCOPE = f"JOIN {O}.workshops w ON w.workshop_id = b.workshop_id WHERE {F}.sees(w.lapas_id)"
"""A batch ``b``'s workshop ``w``, in the transaction's lapas scope."""

UPGRADE = [
    f"""CREATE VIEW {F}.batches WITH (security_barrier = true) AS
        SELECT b.batch_id, b.workshop_id, w.name AS workshop_name, w.lapas_id, b.sku, p.name AS product_name,
               b.produced_qty, b.production_date, b.unit_material_cost_idr, b.supplier_id
          FROM {O}.production_batches b JOIN {O}.products p ON p.sku = b.sku {IN_SCOPE}""",
    f"COMMENT ON VIEW {F}.batches IS 'The catalogue''s production batches with their workshop and lapas, in the "
    "transaction''s lapas scope (karya.lapas_scope): what the finance workspace shows of a batch (finance_0005)'",
    f"""CREATE VIEW {F}.batch_work_group WITH (security_barrier = true) AS
        SELECT g.batch_id, g.inmate_id, g.work_share
          FROM {O}.batch_work_group g JOIN {O}.production_batches b ON b.batch_id = g.batch_id {IN_SCOPE}""",
    f"COMMENT ON VIEW {F}.batch_work_group IS 'Who worked on a production batch, by pseudonymous inmate id only, "
    "with their work share, for the batches in the transaction''s lapas scope (finance_0005)'",
    f"GRANT SELECT ON {F}.batches, {F}.batch_work_group TO {FINANCE}",
]
DOWNGRADE = [f"DROP VIEW {F}.batch_work_group", f"DROP VIEW {F}.batches"]

upgrade, downgrade = statement_migration(UPGRADE, DOWNGRADE)
