"""The PPh 22 withholding slips (``ledger.withholding_slips``): written with the settlements that withheld, read by
``karya ledger withholding``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from infra.db.unit_of_work import UnitOfWork
from services.ledger.domain.tax import WithholdingSlip


async def record_slips(uow: UnitOfWork, slips: Sequence[WithholdingSlip]) -> None:
    """Insert the slips of a batch's settlements (one statement; a posting key seen before is kept as it was)."""
    if not slips:
        return
    await uow.conn.execute(
        text(
            f"INSERT INTO {uow.table('withholding_slips')} (posting_key, order_key, lapas_id, settled_at, withheld, "
            "expected, tolerance, flagged, slip_ref, tax_ref) VALUES (:k, :o, :l, :t, :w, :e, :tol, :f, :r, :x) "
            "ON CONFLICT (posting_key) DO NOTHING"
        ),
        [
            {
                "k": s.posting_key,
                "o": s.order_key,
                "l": s.lapas_id,
                "t": s.settled_at,
                "w": s.check.withheld,
                "e": s.check.expected,
                "tol": s.check.tolerance,
                "f": s.check.flagged,
                "r": s.slip_ref,
                "x": s.tax_ref,
            }
            for s in slips
        ],
    )


async def withholding_slips(
    uow: UnitOfWork, *, lapas: str | None = None, flagged_only: bool = False, limit: int = 1000
) -> list[dict[str, Any]]:
    """The slips, newest settlement first (``lapas``: of one lapas; ``flagged_only``: those a person reviews)."""
    rows = await uow.conn.execute(
        text(
            "SELECT posting_key, order_key, lapas_id, settled_at, withheld, expected, tolerance, flagged, slip_ref, "
            f"tax_ref FROM {uow.table('withholding_slips')} WHERE (CAST(:l AS text) IS NULL OR lapas_id = :l) "
            "AND (flagged OR NOT :f) ORDER BY settled_at DESC, posting_key LIMIT :n"
        ),
        {"l": lapas, "f": flagged_only, "n": limit},
    )
    return [dict(r._mapping) for r in rows]
