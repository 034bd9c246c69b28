"""Which lapas an inmate's accounts are in: the lapas of the orders whose entries moved the inmate's savings or
receivable (the account code names only the pseudonymous inmate; the finance scope, ``finance_0002``, and the
period trigger, ``ledger_0010``, read it the same way). An inmate whose savings came from more than one lapas (a
transfer) is placed in the lapas of the latest such entry."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork

_LATEST_LAPAS = """
SELECT DISTINCT ON (split_part(l.account, ':', 3)) split_part(l.account, ':', 3) AS inmate, f.lapas_id
  FROM {lines} l
  JOIN {entries} e ON e.sequence = l.sequence
  JOIN {facts} f ON f.order_key = e.order_key
 WHERE (l.account LIKE 'liability:inmate_savings:%' OR l.account LIKE 'asset:inmate_receivable:%')
   {only}
 ORDER BY split_part(l.account, ':', 3), l.sequence DESC
"""


async def inmate_lapas(uow: UnitOfWork, inmate_ids: Collection[str] | None = None) -> dict[str, str]:
    """Inmate id → the lapas whose books hold their savings (every inmate with an order's entry when
    ``inmate_ids`` is ``None``)."""
    if inmate_ids is not None and not inmate_ids:
        return {}
    only = "" if inmate_ids is None else "AND split_part(l.account, ':', 3) = ANY(:ids)"
    sql = _LATEST_LAPAS.format(
        lines=uow.table("journal_lines"),
        entries=uow.table("journal_entries"),
        facts=uow.table("order_facts"),
        only=only,
    )
    params = {} if inmate_ids is None else {"ids": list(inmate_ids)}
    rows = (await uow.conn.execute(text(sql), params)).all()
    return {str(r.inmate): str(r.lapas_id) for r in rows}
