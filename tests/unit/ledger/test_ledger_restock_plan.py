"""The restock plan on in-memory facts (no database): the material of restocked units goes from the supplier back to
production capital, once per lot, and only for a batch the order was distributed from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.contracts.orders import UnitsRestocked
from services.ledger.domain.facts import OrderFacts
from services.ledger.restock import RestockRefused, plan_restock

KEY = "shopee:shop-x:77001"
AT = datetime(2026, 6, 3, 9, tzinfo=UTC)
ALLOCATION: dict[str, Any] = {
    "batch_id": "B1",
    "sku": "SMK-BTK-001",
    "workshop_id": "w",
    "lapas_id": "sukamiskin",
    "quantity": 2,
    "unit_price": 100_000,
    "unit_material_cost": 30_000,
    "supplier_id": "sup-kain",
    "work_group": [{"inmate_id": "WBP-SUK001", "work_share": 1}],
}


def facts(distributed: int = 1, allocations: list[dict[str, Any]] | None = None) -> OrderFacts:
    completion = {
        "order_key": KEY,
        "lapas_id": "sukamiskin",
        "allocations": [ALLOCATION] if allocations is None else allocations,
    }
    return OrderFacts(KEY, "sukamiskin", completion, distributed=distributed)


def restock(quantity: int = 1, batch: str = "B1", restock_id: int = 7) -> UnitsRestocked:
    return UnitsRestocked(order_key=KEY, restock_id=restock_id, batch_id=batch, quantity=quantity, restocked_at=AT)


def test_the_material_of_restocked_units_goes_back_from_the_supplier_to_production_capital() -> None:
    entry = plan_restock(facts(), restock(quantity=2))
    assert entry is not None and entry.posting_key == f"{KEY}:restock:7" and entry.batch_id == "B1"
    assert {(ln.account, ln.side.value, ln.amount) for ln in entry.lines} == {
        ("liability:supplier_payable:sukamiskin:sup-kain", "D", 60_000),
        ("expense:material_cost:sukamiskin", "C", 60_000),
        ("expense:capital_allocation:sukamiskin", "D", 60_000),
        ("equity:production_capital:sukamiskin", "C", 60_000),
    }
    # the distribution's expenses net to what they were: the order's books keep no residual
    net = sum(
        ln.amount if ln.side.value == "D" else -ln.amount for ln in entry.lines if ln.account.startswith("expense:")
    )
    assert net == 0
    assert plan_restock(facts(), restock(quantity=2)) == entry, "the same lot is the same request: posted once"


def test_nothing_is_booked_for_an_order_the_ledger_never_saw_completed() -> None:
    assert plan_restock(None, restock()) is None
    assert plan_restock(facts(allocations=[{**ALLOCATION, "unit_material_cost": 0}]), restock()) is None


@pytest.mark.parametrize(
    ("order", "lot", "rule"),
    [
        (facts(), restock(batch="B9"), "batch_allocated"),
        (facts(), restock(quantity=3), "quantity_fits"),
        (facts(distributed=0), restock(), "distributed_first"),
    ],
)
def test_a_restock_that_cannot_be_booked_names_its_rule(order: OrderFacts, lot: UnitsRestocked, rule: str) -> None:
    with pytest.raises(RestockRefused, match=rule):
        plan_restock(order, lot)
