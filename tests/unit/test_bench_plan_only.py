"""The offline plan driver (``python -m bench.plan_only``): batches cut like a fetch over every partition, and the
books it plans do not depend on where the batches are cut (the in-memory load keeps what the adapters would)."""

from __future__ import annotations

import zlib
from datetime import timedelta

from bench.plan_only import InMemoryLedger, Record, cut_batches, run_plan
from infra.messaging.envelope import Envelope
from tests.integration.ledger_support import Batch, completed, refunded, settled
from tests.unit.ledger.ledger_support import DEMO_POLICIES, INMATES, T0


def test_batches_take_an_equal_share_of_every_partition_in_order_and_every_record_once() -> None:
    records: list[Record] = [("t", p, f"{p}-{i}".encode()) for p in range(3) for i in range(5 if p else 2)]
    batches = cut_batches(records, 6)
    assert [len(b) for b in batches] == [6, 4, 2]
    assert sorted(r for b in batches for r in b) == sorted(records)
    for p in range(3):
        mine = [r[2] for b in batches for r in b if r[1] == p]
        assert mine == [r[2] for r in records if r[1] == p]  # each partition in its order


def workload() -> list[Record]:
    """Completions on one topic, settlements and refunds on another, keyed by order to 3 partitions."""
    orders: list[Envelope] = []
    market: list[Envelope] = []
    for n in range(12):
        key = f"shopee:shop-1:plan-{n}"
        inmate = INMATES["sukamiskin"][n % 4]
        batch = Batch(f"B-{n}", "SMK-BTK-001", "sukamiskin", 1 + n % 3, 90_000, 10_000, "sup-kain", ((inmate, 1),))
        at = T0 + timedelta(hours=n)
        orders.append(completed(key, [batch], at))
        market.append(settled(key, batch.value, at + timedelta(days=2), settlement_id=f"ESC-{n}"))
        if n % 3 == 0:
            market.append(refunded(key, f"RF-{n}", batch.value // 4, at + timedelta(days=4)))
    return [("market", _partition(e), e.to_bytes()) for e in market] + [
        ("orders", _partition(e), e.to_bytes()) for e in orders
    ]


def parking_cut(records: list[Record]) -> list[list[Record]]:
    """The marketplace's events in batches of three first, then the completions: every settlement waits parked."""
    market, orders = [r for r in records if r[0] == "market"], [r for r in records if r[0] == "orders"]
    return [market[i : i + 3] for i in range(0, len(market), 3)] + [orders[i : i + 3] for i in range(0, len(orders), 3)]


def _partition(envelope: Envelope) -> int:
    return zlib.crc32(envelope.subject.encode()) % 3


def test_the_books_do_not_depend_on_where_the_batches_are_cut_and_a_pass_is_deterministic() -> None:
    records = workload()
    whole, small = InMemoryLedger(), InMemoryLedger()
    one = run_plan([records], DEMO_POLICIES, whole)
    cut = parking_cut(records)
    many = run_plan(cut, DEMO_POLICIES, small)
    assert one.entries >= 12 * 3  # a sale, a settlement and a distribution at least, per order
    assert (many.entries, many.lines) == (one.entries, one.lines)
    assert small.hashes == whole.hashes  # the same posting keys under the same request hashes
    assert {a: b for a, b in small.balances.items() if b} == {a: b for a, b in whole.balances.items() if b}
    assert small.times_parked > 0 and whole.times_parked == 0  # small batches parked settlements ahead of sales
    assert not small.parked  # and released every one
    assert run_plan(cut, DEMO_POLICIES).digest == many.digest
