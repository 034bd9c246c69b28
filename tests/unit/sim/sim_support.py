"""Shared fixtures for the simulator and API-client tests: settings, the demo catalogue, hand-made orders."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import httpx
from fastapi import FastAPI, Request, Response

from services.gateway.clients.tokens import ShopAccess
from services.orders.catalogue import Catalogue, Channel, Listing, load_catalogue
from sim.api import create_app
from sim.fees import compute_settlement, fee_rates
from sim.settings import SimSettings
from sim.state import SimLine, SimOrder, SimRefund, SimRefundLine, SimSettlement, SimState
from tests.static_tokens import StaticTokens

ROOT = Path(__file__).resolve().parents[3]
DEMO_CATALOGUE = ROOT / "deploy" / "demo" / "catalogue.yaml"
NOW = 1_793_491_200  # 2026-11-01T00:00:00Z
GATEWAY = "http://127.0.0.1:8083"

SETTINGS = SimSettings(
    tokopedia_webhook_secret="tp-webhook-secret",
    tokopedia_api_token="tp-api-token",
    tokopedia_fs_id=13004,
    tiktok_app_key="tts-app-key",
    tiktok_app_secret="tts-app-secret-0001",
    shopee_partner_id=2001234,
    shopee_partner_key="shopee-partner-key",
    blibli_api_client_id="mta-api-karya-01",
    blibli_api_client_key="mta-api-client-key-0001",
    blibli_api_key="blibli-key",
    blibli_api_secret="blibli-api-secret-01",
    sim_gateway_url=GATEWAY,
    gateway_public_url=GATEWAY,
)


def fixed_clock(at: float = NOW) -> Callable[[], float]:
    """A clock that always says ``at``."""
    return lambda: at


@cache
def catalogue() -> Catalogue:
    """The demo catalogue (loaded once)."""
    return load_catalogue(DEMO_CATALOGUE)


def listings(channel: Channel, count: int = 1) -> list[Listing]:
    """The first ``count`` listings of one shop of ``channel``."""
    first = next(x for x in catalogue().listings if x.channel is channel)
    same_shop = [x for x in catalogue().listings if x.channel is channel and x.shop_id == first.shop_id]
    return same_shop[:count]


def add_order(
    state: SimState,
    channel: Channel,
    order_id: str,
    statuses: Sequence[str],
    *,
    lines: Sequence[tuple[int, int]] = ((2, 25_000),),
    start: int = NOW - 3_600,
    settle: bool = False,
    refunds: Sequence[int] = (),
    float_amounts: bool = False,
) -> SimOrder:
    """Create an order with ``lines`` (quantity, unit price) that went through ``statuses`` a minute apart."""
    chosen = listings(channel, len(lines))
    order = SimOrder(
        channel=channel,
        shop_id=chosen[0].shop_id,
        order_id=order_id,
        lines=tuple(
            SimLine(listing, q, p, f"{order_id}{n + 1:02d}")
            for n, (listing, (q, p)) in enumerate(zip(chosen, lines, strict=True))
        ),
        created_at=start,
        shipping_cost=9_000,
        invoice=f"INV/20261101/MPL/{order_id}",
        float_amounts=float_amounts,
    )
    state.create(order, statuses[0], start)
    at = start
    for status in statuses[1:]:
        at += 60
        state.set_status(order, status, at)
    if settle:
        rates = fee_rates(channel, catalogue().products_by_sku[chosen[0].sku].kind)
        if channel is Channel.BLIBLI:
            parts = tuple(compute_settlement(line.total, rates) for line in order.lines)
        else:
            parts = (compute_settlement(order.gross, rates),)
        state.settle(order, SimSettlement(f"7{order_id[-6:]}", at, parts))
    for n, amount in enumerate(refunds):
        at += 60
        part = SimRefundLine(0, 1, amount)  # one unit of the first line (or a goodwill share of it)
        state.refund(order, SimRefund(f"RF{order_id}{n}", amount, "partial", at, (part,)))
    return order


def simulator_app(state: SimState, clock: Callable[[], float] | None = None) -> FastAPI:
    """The simulated seller APIs over ``state``."""
    return create_app(state, SETTINGS, clock or fixed_clock())


def tokens_for(app: FastAPI, channel: str, *shops: str) -> StaticTokens:
    """Shops of ``channel`` authorised on the simulator ``app`` (code exchanged), as a client's token source."""
    issued = app.state.tokens
    found = {}
    for shop in shops:
        grant = issued.exchange(channel, issued.authorize(channel, shop))
        cipher = issued.cipher(shop) if channel == "tiktok_shop" else None
        found[(channel, shop)] = ShopAccess(grant.access_token, cipher)
    return StaticTokens(found)


def transport(app: FastAPI) -> httpx.ASGITransport:
    """An in-process transport to ``app``."""
    return httpx.ASGITransport(app=app)


def reference_hmac(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 written out from RFC 2104 (independent of the ``hmac`` module), lowercase hex."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).hexdigest()


@dataclass
class FakeGateway:
    """Accepts correctly signed webhooks (200), refuses the rest (401); records everything."""

    received: list[tuple[str, bytes, bool]] = field(default_factory=list)
    fail_first: int = 0

    def verify(self, route: str, body: bytes, headers: Mapping[str, str]) -> bool:
        if route.startswith("/webhooks/tokopedia/"):
            return headers.get("authorization-hmac") == reference_hmac(b"tp-webhook-secret", body)
        if route.startswith("/webhooks/tiktok-shop/"):
            return headers.get("authorization") == reference_hmac(b"tts-app-secret-0001", b"tts-app-key" + body)
        callback = (GATEWAY + route).encode()
        return headers.get("authorization") == reference_hmac(b"shopee-partner-key", callback + b"|" + body)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/{channel}/{kind}")
        async def hook(channel: str, kind: str, request: Request) -> Response:
            if self.fail_first > 0:
                self.fail_first -= 1
                return Response(status_code=503)
            body = await request.body()
            route = f"/webhooks/{channel}/{kind}"
            ok = request.headers.get("content-type") == "application/json" and self.verify(route, body, request.headers)
            self.received.append((route, body, ok))
            return Response(status_code=200 if ok else 401)

        return app
