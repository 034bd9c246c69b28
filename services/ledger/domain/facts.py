"""What the ledger has posted per order: the payloads it posted from, kept to plan the order's later events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class OrderFacts:
    """What the ledger has posted for one order: the completion payload, the settlement payload once settled, the
    gross refunded so far. ``is_new``/``changed`` say what a batch must write back."""

    order_key: str
    lapas_id: str
    completion: dict[str, Any]
    settlement: dict[str, Any] | None = None
    refunded_gross: int = 0
    is_new: bool = False
    changed: bool = False
