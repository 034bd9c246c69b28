"""Two lapas on the session database for the finance read API's tests: an order of each, settled and
distributed to an inmate of its own, a payout of lapas B's inmate, and a webhook delivery of each order whose body
names its buyer. Tests check that lapas A's scope shows A's rows and never B's. :func:`orderless_adjustment` posts an
entry of no order and no inmate (only every-lapas viewers see it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.ledger import corrections
from services.ledger.adapters.journal_repo import normal_balances, post_entries
from services.ledger.domain import accounts
from services.ledger.domain.model import PayoutRequest
from services.ledger.domain.postings import build_payout
from services.ledger.outbound import LedgerTopics
from tests.integration.ledger_support import (
    Batch,
    as_superuser,
    completed,
    ledger_uow,
    load_demo_policies,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    pph22,
    settled,
)

LAPAS_A, LAPAS_B = "cipinang", "kerobokan"
BUYER = "Siti Buyer Rahasia"


@dataclass(frozen=True)
class TwoLapas:
    """What :func:`two_lapas` posted: per lapas its order, inmate and entry sequences, and the work items."""

    order_a: str
    order_b: str
    inmate_a: str
    inmate_b: str
    entries_a: tuple[int, ...]
    entries_b: tuple[int, ...]
    unallocated_a: str
    """An order of A whose proceeds do not cover its material cost: held in unallocated."""
    suspense_b: str
    """An order of B whose settlement paid 2,500 less than its itemised fees say: in suspense."""
    parked: str
    """An order never completed whose settlement waits (no lapas known yet)."""


def _delivery(order_key: str) -> str:
    body = {"data": {"ordersn": order_key.rsplit(":", 1)[1], "buyer_name": BUYER, "status": "COMPLETED"}}
    literal = json.dumps(body).replace("'", "''")
    body_sql = f"convert_to('{literal}', 'UTF8')"
    return (
        "INSERT INTO gateway.raw_deliveries "
        "(channel, webhook_type, dedupe_key, order_key, body, headers, body_sha256, body_bytes) "
        f"VALUES ('shopee', 'order_status', 'finance-test:{order_key}', '{order_key}', {body_sql}, "
        f'\'{{"x-buyer": "{BUYER}"}}\'::jsonb, sha256({body_sql}), octet_length({body_sql}))'
    )


async def two_lapas(urls: RoleUrls, admin_url: str) -> TwoLapas:
    """Post an order of lapas A and one of lapas B (completion, settlement, distribution), pay B's inmate out,
    and store a webhook delivery of each order."""
    await load_demo_policies(urls.service)
    engine = make_engine(urls.service, pool_size=1)
    a, b = new_inmate(), new_inmate()
    ka, kb, ua, sb, kp = (new_order_key() for _ in range(5))
    at = datetime(2026, 5, 4, 10, tzinfo=UTC)
    order_a = [Batch("B-CPN-WDW-1", "CPN-WDW-001", LAPAS_A, 2, 120_000, 40_000, "sup-kayu", ((a, 1),))]
    order_b = [Batch("B-KRB-CCN-1", "KRB-CCN-001", LAPAS_B, 3, 50_000, 9_000, "sup-kelapa", ((b, 1),))]
    below_cost = [Batch("B-CPN-WDW-1", "CPN-WDW-001", LAPAS_A, 1, 100_000, 150_000, "sup-kayu", ((a, 1),))]
    lapas_of = {ka: LAPAS_A, ua: LAPAS_A, kb: LAPAS_B, sb: LAPAS_B}
    try:
        processor = new_processor()
        for key, batches in ((ka, order_a), (kb, order_b), (ua, below_cost)):
            gross = sum(x.value for x in batches)
            assert await post(engine, processor, [completed(key, batches, at), settled(key, gross, at)]) == []
        gross = sum(x.value for x in order_b)
        short = settled(sb, gross, at, fees={"commission_fee": 9_000}, net=gross - 9_000 - pph22(gross) - 2_500)
        assert await post(engine, processor, [completed(sb, order_b, at), short]) == []
        assert await post(engine, processor, [settled(kp, gross, at)]) == []
        async with engine.begin() as conn:
            uow = ledger_uow(conn)
            payout = build_payout(
                PayoutRequest(b, f"REL-{kb[-6:]}", 1_000, datetime(2026, 5, 6, tzinfo=UTC)),
                await normal_balances(uow, [accounts.inmate_savings(b)]),
                LAPAS_B,
            )
            assert len((await post_entries(uow, [(payout, "test")])).posted) == 1
            rows = await conn.execute(
                text(
                    "SELECT sequence, coalesce(order_key, posting_key) AS k FROM ledger.journal_entries "
                    "WHERE order_key = ANY(:o) OR posting_key LIKE :p ORDER BY sequence"
                ),
                {"o": list(lapas_of), "p": f"payout:{b}:%"},
            )
            sequences = [(r.sequence, r.k) for r in rows]
    finally:
        await engine.dispose()
    await as_superuser(admin_url, _delivery(ka), _delivery(kb))
    return TwoLapas(
        ka,
        kb,
        a,
        b,
        tuple(s for s, k in sequences if lapas_of.get(k) == LAPAS_A),
        tuple(s for s, k in sequences if lapas_of.get(k) != LAPAS_A),
        ua,
        sb,
        kp,
    )


async def orderless_adjustment(
    urls: RoleUrls, debit: str = "expense:marketplace_fee:unitemised", credit: str = "clearing:suspense"
) -> tuple[str, int]:
    """Propose and approve (two people, as ``karya ledger adjust``/``approve``) an adjustment of no order moving 700
    rupiah from ``credit`` to ``debit`` (by default shared accounts); its posting key and sequence."""
    document = {
        "memo": "a fee of no order",
        "lines": [{"account": debit, "debit": 700}, {"account": credit, "credit": 700}],
    }
    engine, at = make_engine(urls.service, pool_size=1), datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            uow = ledger_uow(conn)
            proposal = await corrections.propose_adjustment(uow, document, "test", reason="x", proposed_by="ani", at=at)
            done = await corrections.approve(uow, LedgerTopics(), proposal.proposal_id, approved_by="budi", at=at)
    finally:
        await engine.dispose()
    assert done.proposal.draft.order_key is None
    return done.posting_key, done.sequence
