"""TikTok Shop statement transactions: each row is a settlement of its own (tests/contract/published/tiktok_shop/
statement_transactions.json). An order paid in its daily statement and again in a later statement's adjustment row
is published as two ``settlement_reported`` events — each under its row's id, with that row's own amounts — which
the ledger posts one after the other (its posting key has the settlement id); the rows are not summed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from infra.messaging.envelope import make_envelope
from services.contracts.marketplace import SETTLEMENT_REPORTED
from services.gateway.canonical import settlement_event
from services.gateway.clients.base import settlements_of
from services.gateway.clients.tiktok_shop import TikTokShopClient
from services.gateway.clients.tokens import ShopAccess
from tests.contract_validation import validate_published
from tests.static_tokens import StaticTokens

CASE: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "contract" / "published" / "tiktok_shop" / "statement_transactions.json").read_text()
)
SHOP, ORDER = "7494", "576461413038785752"
KEY = f"tiktok_shop:{SHOP}:{ORDER}"


def client() -> TikTokShopClient:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == CASE["path"]
        return httpx.Response(200, json=CASE["answer"])

    tokens = StaticTokens({("tiktok_shop", SHOP): ShopAccess("token", "cipher")})
    secret = "tts-secret-000001"
    return TikTokShopClient("https://open-api.test", "app", secret, tokens, transport=httpx.MockTransport(answer))


async def test_each_statement_row_is_a_settlement_of_its_own() -> None:
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
    assert latest is not None and latest.settlement_id == "7291377"  # the latest row, which refunds are netted against
