"""The PPh 22 withholding slips (``ledger.withholding_slips``): written with the settlements that withheld, read by
``karya ledger withholding``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import text

from infra.db.rowsets import RowSet, Writes
from infra.db.unit_of_work import UnitOfWork
from services.ledger.domain.tax import WithholdingSlip


def add_slips(writes: Writes, uow: UnitOfWork, slips: Sequence[WithholdingSlip]) -> None:
    """Add to ``writes`` the slips of a batch's settlements (a posting key seen before is kept as it was)."""
    writes.add(
        _slip_rows(uow.schema),
        [
            [s.posting_key for s in slips],
            [s.order_key for s in slips],
            [s.lapas_id for s in slips],
            [s.settled_at for s in slips],
            [s.check.withheld for s in slips],
            [s.check.expected for s in slips],
            [s.check.tolerance for s in slips],
            [s.check.flagged for s in slips],
            [s.slip_ref for s in slips],
            [s.tax_ref for s in slips],
        ],
    )


@cache
def _slip_rows(schema: str) -> RowSet:
    return RowSet(
        f"INSERT INTO {schema}.withholding_slips (posting_key, order_key, lapas_id, settled_at, withheld, expected, "
        "tolerance, flagged, slip_ref, tax_ref) SELECT * FROM {rows} ON CONFLICT (posting_key) DO NOTHING",
        [
            ("k", "text"),
            ("o", "text"),
            ("l", "text"),
            ("t", "timestamptz"),
            ("w", "bigint"),
            ("e", "bigint"),
            ("tol", "bigint"),
            ("f", "boolean"),
            ("r", "text"),
            ("x", "text"),
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
