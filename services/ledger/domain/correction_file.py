"""An adjustment file (``karya ledger adjust FILE``) read into an :class:`Adjustment`. Pure: no I/O; the caller
loads the YAML/JSON document. The rules the adjustment must then follow are in
:mod:`services.ledger.domain.corrections`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.ledger.domain.accounts import Side
from services.ledger.domain.corrections import Adjustment, CorrectionRefused
from services.ledger.domain.journal import Line

__all__ = ["parse_adjustment"]


def parse_adjustment(data: object, source: str) -> Adjustment:
    """An :class:`Adjustment` from a loaded YAML/JSON document::

        memo: clear the unmapped fee of order X      # optional
        order_key: shopee:shop-1:X                   # optional
        reference: BCA-2026-12-02-0017               # required when a line touches asset:bank:*
        lines:
          - {account: expense:marketplace_fee:tangerang:unmapped, debit: 2500}
          - {account: clearing:suspense:tangerang, credit: 2500}

    Amounts are positive whole rupiah (integers; ``2500.0`` and ``"2500"`` are refused)."""
    if not isinstance(data, Mapping):
        raise CorrectionRefused(f"{source}: an adjustment is a mapping with 'lines'")
    unknown = sorted(set(data) - {"lines", "memo", "order_key", "reference"})
    if unknown:
        raise CorrectionRefused(f"{source}: unknown fields {', '.join(map(str, unknown))}")
    raw = data.get("lines")
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise CorrectionRefused(f"{source}: 'lines' must be a list")
    lines = tuple(_line(item, f"{source}: line {n}") for n, item in enumerate(raw, start=1))
    texts = {name: _optional_text(data.get(name), f"{source}: {name}") for name in ("memo", "order_key", "reference")}
    return Adjustment(lines, texts["memo"], texts["order_key"], texts["reference"])


def _optional_text(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CorrectionRefused(f"{where} must be a non-empty string")
    return value.strip()


def _line(item: object, where: str) -> Line:
    if not isinstance(item, Mapping) or not isinstance(item.get("account"), str):
        raise CorrectionRefused(f"{where}: needs an 'account' and one of 'debit' or 'credit'")
    sides = [(side, item[name]) for name, side in (("debit", Side.DEBIT), ("credit", Side.CREDIT)) if name in item]
    extra = sorted(set(item) - {"account", "debit", "credit"})
    if len(sides) != 1 or extra:
        raise CorrectionRefused(f"{where}: needs an 'account' and exactly one of 'debit' or 'credit'")
    side, amount = sides[0]
    if type(amount) is not int or amount <= 0:
        raise CorrectionRefused(f"{where}: amount {amount!r} is not a positive whole number of rupiah")
    return Line(str(item["account"]), side, amount)
