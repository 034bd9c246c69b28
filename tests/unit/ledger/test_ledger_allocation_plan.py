"""The allocation plan and the policy pinning of cumulative distributions, on in-memory inputs (no database).

- An order distributed from its first settlements keeps its batches: a person may retry the held rest with the
  same batches, never with others (the deltas to come are only right against what was posted).
- A policy version loaded between two settlements (effective before the completion) changes no delta: the order
  stays under the versions it was first distributed under, so the posted parts stay the split of the total.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.contracts.orders import BatchFacts
from services.ledger.allocation import AllocationRefused, Catalogue, Pick, plan_allocation
from services.ledger.domain.facts import OrderFacts
from services.ledger.domain.policy_file import parse_policies
from services.ledger.domain.postings import build_completion
from services.ledger.requests import completion_request
from services.ledger.settlement_plan import plan_settlement
from tests.unit.ledger.ledger_support import DEMO_POLICIES, MemoryLedger, at, settlement_data

KEY = "shopee:shop-x:88001"
INMATE = "WBP-SUK001"
SAVINGS = f"liability:inmate_savings:{INMATE}"


def _allocation(batch_id: str, material: int) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "sku": "SMK-BTK-001",
        "workshop_id": "w",
        "lapas_id": "sukamiskin",
        "quantity": 1,
        "unit_price": 100_000,
        "unit_material_cost": material,
        "supplier_id": "sup-kain",
        "work_group": [{"inmate_id": INMATE, "work_share": 1}],
    }


def _completion(allocations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "order_key": KEY,
        "channel": "shopee",
        "lapas_id": "sukamiskin",
        "raw_status": "COMPLETED",
        "update_time": at(0).isoformat(),
        "gross_amount": 100_000,
        "allocations": allocations,
    }


def _settlement(sid: str, gross: int, fee: int, net: int) -> dict[str, Any]:
    return settlement_data(KEY, sid, gross, fee, net)


def _catalogue(batch_id: str) -> Catalogue:
    batch = BatchFacts(batch_id, "SMK-BTK-001", "w", "sukamiskin", 5, 10_000, "sup-kain", ((INMATE, 1),))
    return {batch_id: (batch, 100_000)}


def test_an_order_held_after_its_first_distribution_keeps_its_batches() -> None:
    completion = _completion([_allocation("B1", 10_000)])
    request = completion_request(completion)
    facts = OrderFacts(KEY, "sukamiskin", completion)
    plan_settlement(facts, _settlement("S1", 100_000, 0, 100_000), request, DEMO_POLICIES)
    held = plan_settlement(facts, _settlement("S2", 0, 9_999, 1), request, DEMO_POLICIES)  # takes savings back
    assert held.hold is not None and facts.distributed == 1
    with pytest.raises(AllocationRefused, match="allocate_once"):
        plan_allocation(KEY, facts, [Pick("B2", 1)], _catalogue("B2"), DEMO_POLICIES)
    catalogue = _catalogue("B1")
    entries, after = plan_allocation(KEY, facts, [Pick("B1", 1)], catalogue, DEMO_POLICIES)
    assert after is not None and after.hold is None and after.distributed == 2
    assert [e.posting_key for e in entries] == [f"{KEY}:distribution:B1:s2"]


def test_a_policy_loaded_between_settlements_changes_no_delta() -> None:
    completion = _completion([_allocation("B1", 10_000)])
    request = completion_request(completion)
    facts = OrderFacts(KEY, "sukamiskin", completion)
    ledger = MemoryLedger()
    ledger.post([build_completion(request)])
    ledger.post(plan_settlement(facts, _settlement("S1", 100_000, 0, 90_000), request, DEMO_POLICIES).entries)
    assert ledger.balances[SAVINGS] == 12_000  # 15% of 80,000 (sukamiskin-standard@v1)
    newer = parse_policies(
        [
            {
                "policy_id": "sukamiskin-standard",
                "version": 2,
                "lapas_id": "sukamiskin",
                "effective_from": "2025-02-01T00:00:00+07:00",  # before the completion: it would be selected
                "rules": [
                    {"target": "pnbp", "share": "1/2"},
                    {"target": "inmate_premi", "share": "1/2"},
                    {"target": "production_capital", "share": "0"},
                ],
            }
        ],
        "test",
    )
    outcome = plan_settlement(facts, _settlement("S2", 0, 0, 10_000), request, [*DEMO_POLICIES, *newer])
    assert outcome.hold is None
    ledger.post(outcome.entries)
    assert ledger.balances[SAVINGS] == 13_500  # 15% of 90,000: still v1, the split of the total
    assert facts.policy_refs == ["sukamiskin-standard@v1"]
