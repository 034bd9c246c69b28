"""TikTok Shop statement transactions (tests/contract/published/tiktok_shop/statement_transactions.json): an order
paid in its daily statement and again in a later statement's adjustment row is published as two
``settlement_reported`` events, each with the order's cumulative totals through its row under the order's one
marketplace settlement id (the first row's), which the ledger posts as differences. A claw-back row (negative
revenue and settlement amounts) lowers the totals: it reaches the ledger's plan as a signed difference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.messaging.envelope import make_envelope
from services.contracts.marketplace import SETTLEMENT_REPORTED
from services.gateway.canonical import settlement_event
from services.gateway.clients.base import settlements_of
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.clients.tokens import ShopAccess
from services.gateway.values import BadValue
from services.ledger.domain import accounts
from services.ledger.settlement_plan import SIGNED, lowered, settlement_difference
from tests.contract_validation import validate_published
from tests.integration.ledger_support import completed
from tests.static_tokens import StaticTokens
from tests.unit.ledger.ledger_support import at
from tests.unit.ledger.test_settlement_cumulative_plan import BANK, Books
from tests.unit.ledger.test_settlement_cumulative_plan import ORDER as ORDER_BATCHES

CASE: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "contract" / "published" / "tiktok_shop" / "statement_transactions.json").read_text()
)
SHOP, ORDER = "7494", "576461413038785752"
KEY = f"tiktok_shop:{SHOP}:{ORDER}"


def client(rows: list[dict[str, Any]] | None = None) -> TikTokShopClient:
    """A client whose statement answer is the recorded case's, or these ``rows``."""

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == CASE["path"]
        if rows is None:
            return httpx.Response(200, json=CASE["answer"])
        return httpx.Response(200, json={**CASE["answer"], "data": {"statement_transactions": rows}})

    tokens = StaticTokens({("tiktok_shop", SHOP): ShopAccess("token", "cipher")})
    secret = "tts-secret-000001"
    return TikTokShopClient("https://open-api.test", "app", secret, tokens, transport=httpx.MockTransport(answer))


async def test_each_statement_row_publishes_the_cumulative_totals() -> None:
    tts = client()
    rows = await settlements_of(tts, SHOP, ORDER)
    latest = await tts.settlement(SHOP, ORDER)
    await tts.aclose()
    events = [settlement_event(row, "tiktok_shop", KEY) for row in rows]
    published = [
        {
            "marketplace_settlement_id": e.marketplace_settlement_id,
            "gross_amount": e.gross_amount,
            "fees": {f.fee_type: f.amount for f in e.fees},
            "pph22_withheld": e.pph22_withheld,
            "net_payout": e.net_payout,
            "settled_at": e.settled_at.isoformat(),
        }
        for e in events
        if e is not None
    ]
    assert published == CASE["expect"]
    ids = [e.settlement_id for e in events if e is not None]
    assert len(set(ids)) == 2 and all(
        i.startswith(f"{m['marketplace_settlement_id']}-") for i, m in zip(ids, published, strict=True)
    )
    for e in events:
        assert e is not None
        data = e.model_dump(mode="json")
        validate_published(
            make_envelope(type=SETTLEMENT_REPORTED, source="karya/gateway", subject=KEY, data=data).to_bytes()
        )
    # The totals through the latest row, which refunds are netted against.
    assert latest is not None and (latest.gross_amount, latest.net_payout) == (200_000, 183_000)


def _row(row_id: str, day: int, revenue: int, commission: int, pph22: int) -> dict[str, Any]:
    """A statement row as TikTok Shop sends it: deductions negative (positive when given back)."""
    net = revenue - commission - pph22
    return {
        "id": row_id,
        "order_id": ORDER,
        "revenue_amount": str(revenue),
        "platform_commission_amount": str(-commission),
        "withholding_tax_amount": str(-pph22),
        "settlement_amount": str(net),
        "statement_time": 1762041600 + day * 86400,
        "currency": "IDR",
    }


async def _published(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    tts = client(rows)
    try:
        found = await settlements_of(tts, SHOP, ORDER)
    finally:
        await tts.aclose()
    events = [settlement_event(row, "tiktok_shop", KEY) for row in found]
    return [e.model_dump(mode="json") for e in events if e is not None]


async def test_a_claw_back_row_reaches_the_ledger_as_a_lowering() -> None:
    # Listed out of order: the client orders rows by statement time, then id.
    rows = [_row("7291500", 4, -10_000, -600, -50), _row("7291001", 0, 100_000, 6_000, 500)]
    first, second = await _published(rows)
    for data in (first, second):
        validate_published(
            make_envelope(type=SETTLEMENT_REPORTED, source="karya/gateway", subject=KEY, data=data).to_bytes()
        )
    assert first["marketplace_settlement_id"] == second["marketplace_settlement_id"] == "7291001"
    assert (second["gross_amount"], second["pph22_withheld"], second["net_payout"]) == (90_000, 450, 84_150)
    assert second["fees"] == [{"fee_type": "platform_commission", "amount": 5_400}]
    difference = settlement_difference(first, second)
    assert difference is not None and difference[SIGNED] is True
    assert (difference["gross_amount"], difference["pph22_withheld"], difference["net_payout"]) == (
        -10_000,
        -50,
        -9_350,
    )
    assert difference["fees"] == [{"fee_type": "platform_commission", "amount": -600}]
    assert lowered(difference) == ["gross_amount", "net_payout", "platform_commission", "pph22_withheld"]
    assert await _published(list(reversed(rows))) == [first, second]  # read again: the same two, nothing new


async def test_a_cumulative_total_below_zero_is_refused_naming_the_field() -> None:
    rows = [_row("7291001", 0, 100_000, 6_000, 500), _row("7291500", 4, -120_000, -6_000, -500)]
    with pytest.raises(BadValue, match=r"row 7291500: cumulative revenue_amount, settlement_amount below zero"):
        await _published(rows)


async def test_totals_returning_to_an_earlier_rows_are_refused_not_lost() -> None:
    rows = [
        _row("7291001", 0, 100_000, 6_000, 500),
        _row("7291500", 4, -10_000, -600, -50),
        _row("7291600", 6, 10_000, 600, 50),
    ]
    with pytest.raises(BadValue, match="return to an earlier row's"):
        await _published(rows)


async def test_a_claw_back_row_posts_its_lowering_through_the_ledger_plan() -> None:
    rows = [_row("7291001", 0, 100_000, 6_000, 500), _row("7291500", 4, -10_000, -600, -50)]
    first, second = await _published(rows)
    books = Books()
    books.post([completed(KEY, ORDER_BATCHES, at(0))])
    for data in (first, second):
        plan = books.post([make_envelope(type=SETTLEMENT_REPORTED, source="karya/gateway", subject=KEY, data=data)])
        assert plan.refused == [] and plan.closed == [] and plan.conflicts == []
    # The bank holds the order's net totals after the claw-back; the receivable is open again by the gross taken.
    assert books.ledger.total(BANK) == 84_150
    assert books.ledger.total(accounts.marketplace_receivable("sukamiskin", "tiktok_shop")) == 104_000 - 90_000
    assert books.facts[KEY].latest == {"7291001": second["settlement_id"]}
