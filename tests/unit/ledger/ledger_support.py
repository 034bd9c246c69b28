"""Shared pieces of the ledger domain tests: demo policies, order strategies and an in-memory journal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from services.ledger.domain import accounts
from services.ledger.domain.accounts import normal_delta
from services.ledger.domain.journal import JournalEntry
from services.ledger.domain.model import (
    BatchAllocation,
    CompletionRequest,
    OrderRef,
    SettlementRequest,
    WorkMember,
)
from services.ledger.domain.policy import SplitPolicy
from services.ledger.domain.policy_file import parse_policies
from services.ledger.domain.refunds import LineRefund

REPO = Path(__file__).resolve().parents[3]
DEMO_POLICY_FILE = REPO / "deploy" / "demo" / "policies.yaml"
DEMO_POLICIES: list[SplitPolicy] = parse_policies(
    yaml.safe_load(DEMO_POLICY_FILE.read_text(encoding="utf-8")), str(DEMO_POLICY_FILE)
)

LAPAS_SKUS = {
    "cipinang": ["CPN-GLV-001", "CPN-GLV-002", "CPN-WDW-001"],
    "sukamiskin": ["SMK-BTK-001", "SMK-FRN-001"],
    "kerobokan": ["KRB-CCN-001", "KRB-MAT-001"],
    "tangerang": ["TNG-MAT-001", "TNG-MAT-002"],
}
INMATES = {lapas: [f"WBP-{lapas[:3].upper()}{n:03d}" for n in range(1, 5)] for lapas in LAPAS_SKUS}
INMATE_LAPAS = {inmate: lapas for lapas, inmates in INMATES.items() for inmate in inmates}
"""Inmate id → their lapas (the map :func:`services.ledger.domain.accounts.account_lapas` takes)."""


def per_lapas_totals(balances: dict[str, int], inmate_lapas: dict[str, str]) -> dict[str | None, int]:
    """Per lapas (``account_lapas``; ``None``: an account of no known lapas) the sum of the signed balances,
    debit-normal positive: every lapas' books balance when each is 0."""
    totals: dict[str | None, int] = {}
    for code, balance in balances.items():
        info = accounts.account_info(code)
        lapas = accounts.account_lapas(code, inmate_lapas)
        totals[lapas] = totals.get(lapas, 0) + (balance if info.normal_side is accounts.Side.DEBIT else -balance)
    return totals


SUPPLIERS = ["sup-kayu-jati", "sup-benang", "sup-kelapa"]
CHANNELS = ["tokopedia", "tiktok_shop", "shopee", "blibli"]
FEE_TYPES = ["commission_fee", "service_fee", "seller_transaction_fee"]
T0 = datetime(2025, 7, 1, tzinfo=UTC)


def at(days: float) -> datetime:
    """``T0`` plus some days (an aware UTC time)."""
    return T0 + timedelta(days=days)


WIB = timezone(timedelta(hours=7))

# The worked example of the postings tests: two pairs of gloves from Lapas Cipinang, sold on Shopee.
ORDER = OrderRef("shopee:shop-cpn:240001", "shopee", "cipinang")
A, B = "WBP-CPN001", "WBP-CPN002"
GLOVES = BatchAllocation(
    "B-GLV-26-01", "CPN-GLV-001", 2, 75_000, 20_000, "sup-benang", (WorkMember(A, 3), WorkMember(B, 2))
)
COMPLETION = CompletionRequest(ORDER, 150_000, datetime(2026, 2, 1, 10, tzinfo=WIB), (GLOVES,))
SETTLEMENT = SettlementRequest(
    ORDER,
    "ESC-1",
    150_000,
    {"commission_fee": 12_000, "service_fee": 3_000},
    750,
    134_250,
    datetime(2026, 2, 4, tzinfo=WIB),
)


def refund(refund_id: str, amount: int, **extra: object) -> LineRefund:
    """A refund of the worked-example order (amount only unless ``extra`` says more)."""
    return LineRefund(ORDER, refund_id, amount, datetime(2026, 2, 10, tzinfo=WIB), **extra)  # type: ignore[arg-type]


work_shares = st.one_of(
    st.integers(min_value=0, max_value=5),
    st.fractions(min_value=0, max_value=3, max_denominator=7),
)


@st.composite
def work_groups(draw: st.DrawFn, lapas_id: str) -> tuple[WorkMember, ...]:
    """A work group of 1–4 distinct inmates of the lapas with non-negative shares, not all zero."""
    inmates = draw(st.lists(st.sampled_from(INMATES[lapas_id]), min_size=1, max_size=4, unique=True))
    shares: list[int | Fraction] = [draw(work_shares) for _ in inmates]
    if sum(shares) == 0:
        shares[0] = 1
    return tuple(WorkMember(i, s) for i, s in zip(inmates, shares, strict=True))


@st.composite
def completions(draw: st.DrawFn, order_id: str | None = None) -> CompletionRequest:
    """A completed order of 1–3 batches whose material cost is at most 40% of each batch's price."""
    lapas_id = draw(st.sampled_from(sorted(LAPAS_SKUS)))
    channel = draw(st.sampled_from(CHANNELS))
    oid = order_id or draw(st.from_regex(r"[0-9]{6,10}", fullmatch=True))
    allocations = []
    for n in range(draw(st.integers(min_value=1, max_value=3))):
        price = draw(st.integers(min_value=10_000, max_value=500_000))
        allocations.append(
            BatchAllocation(
                batch_id=f"B{n}-{draw(st.integers(min_value=100, max_value=999))}",
                sku=draw(st.sampled_from(LAPAS_SKUS[lapas_id])),
                quantity=draw(st.integers(min_value=1, max_value=5)),
                unit_price=price,
                unit_material_cost=draw(st.integers(min_value=0, max_value=price * 2 // 5)),
                supplier_id=draw(st.sampled_from(SUPPLIERS)),
                work_group=draw(work_groups(lapas_id)),
            )
        )
    return CompletionRequest(
        order=OrderRef(order_key=f"{channel}:shop-{lapas_id}:{oid}", channel=channel, lapas_id=lapas_id),
        gross=sum(a.quantity * a.unit_price for a in allocations),
        completed_at=draw(st.sampled_from([at(0), at(200), at(366), at(500)])),
        allocations=tuple(allocations),
    )


@st.composite
def settlements(draw: st.DrawFn, completion: CompletionRequest) -> SettlementRequest:
    """A settlement with fees up to 12%, PPh 22 of 0.5% and a net off by up to ±2,000 (to suspense)."""
    gross = completion.gross
    fees = {
        fee_type: draw(st.integers(min_value=0, max_value=gross * 4 // 100))
        for fee_type in draw(st.lists(st.sampled_from(FEE_TYPES), unique=True))
    }
    pph22 = gross * 5 // 1000
    difference = draw(st.sampled_from([0, 0, 0, 1, -1, 2_000, -2_000]))
    return SettlementRequest(
        order=completion.order,
        settlement_id=f"stl-{completion.order.order_key.rsplit(':', 1)[-1]}",
        gross=gross,
        fees=fees,
        pph22_withheld=pph22,
        net_payout=max(0, gross - sum(fees.values()) - pph22 + difference),
        settled_at=completion.completed_at + timedelta(days=3),
    )


class Conflict(Exception):
    """Same posting key, different request hash."""


class MemoryLedger:
    """A journal in a dict: idempotent posting by key and request hash, normal-side balances."""

    def __init__(self) -> None:
        self.entries: dict[str, JournalEntry] = {}
        self.posted_keys: list[str] = []
        self.balances: dict[str, int] = {}
        self.debits = 0
        self.credits = 0

    def post(self, entries: Sequence[JournalEntry]) -> list[JournalEntry]:
        """Post all new entries or none; existing keys must carry the same hash. Returns the new ones."""
        fresh = []
        for entry in entries:
            existing = self.entries.get(entry.posting_key)
            if existing is None:
                entry.validate()
                fresh.append(entry)
            elif existing.request_hash != entry.request_hash:
                raise Conflict(entry.posting_key)
        for entry in fresh:
            self.entries[entry.posting_key] = entry
            self.posted_keys.append(entry.posting_key)
            self.debits += entry.debit_total
            self.credits += entry.credit_total
            for line in entry.lines:
                delta = normal_delta(line.account, line.side, line.amount)
                self.balances[line.account] = self.balances.get(line.account, 0) + delta
        return fresh

    def total(self, prefix: str) -> int:
        """Sum of the balances of accounts whose code starts with ``prefix``."""
        return sum(v for k, v in self.balances.items() if k.startswith(prefix))


def settlement_data(order_key: str, settlement_id: str, gross: int, fee: int, net: int) -> dict[str, Any]:
    """A ``settlement_reported`` payload of a shopee order: one commission fee, no PPh 22, settled at day 3."""
    return {
        "order_key": order_key,
        "channel": "shopee",
        "settlement_id": settlement_id,
        "gross_amount": gross,
        "fees": [{"fee_type": "commission_fee", "amount": fee}],
        "pph22_withheld": 0,
        "net_payout": net,
        "settled_at": at(3).isoformat(),
    }
