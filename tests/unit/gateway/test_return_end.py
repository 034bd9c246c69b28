"""When a return ends an order that never completed (:func:`services.gateway.fetching.return_end`): refunded returns
that cover every unit of the order, or its whole product total, end it at the last refund's time; anything less
leaves the order to the marketplace's next status (a rejected return goes on to completion)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.contracts.marketplace import RefundLine, RefundReported
from services.gateway.clients.base import ApiOrder, ApiOrderLine, ApiSettlement
from services.gateway.clients.refunds import ApiRefund, ApiRefundLine
from services.gateway.deps import GatewayDeps
from services.gateway.fetching import FetchPlan, fetch, return_end
from services.gateway.normalise import Notice
from services.gateway.settings import GatewaySettings
from tests.unit.gateway.test_two_phase import SECRETS

AT = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
KEY = "tiktok_shop:7494:5771"
ORDER = ApiOrder(
    "tiktok_shop",
    "7494",
    "5771",
    "DELIVERED",
    AT,
    (ApiOrderLine("P1", "S1", 2, 25_000), ApiOrderLine("P2", "S2", 1, 40_000)),
    90_000,
)


def refund(refund_id: str, reason: str, units: list[tuple[str, int, int]], minutes: int = 0) -> RefundReported:
    lines = [RefundLine(channel_sku_id=sku, quantity=q, amount=a) for sku, q, a in units]
    return RefundReported(
        order_key=KEY,
        channel="tiktok_shop",
        refund_id=refund_id,
        amount=sum(a for _, _, a in units),
        reason=reason,
        refunded_at=AT + timedelta(minutes=minutes),
        lines=lines,
    )


def test_returns_of_every_unit_end_the_order_at_the_last_refund() -> None:
    first = refund("R1", "return", [("S1", 2, 50_000)], minutes=5)
    second = refund("R2", "return", [("S2", 1, 40_000)], minutes=90)
    assert return_end([first, second], ORDER) == AT + timedelta(minutes=90)
    assert return_end([second, first], ORDER) == AT + timedelta(minutes=90)


def test_a_return_of_some_units_or_a_refund_without_goods_back_ends_nothing() -> None:
    assert return_end([refund("R1", "return", [("S1", 1, 25_000)])], ORDER) is None
    assert return_end([refund("R1", "partial", [("S1", 2, 50_000), ("S2", 1, 40_000)])], ORDER) is None
    assert return_end([], ORDER) is None


def test_a_return_without_lines_ends_the_order_when_it_refunds_the_product_total() -> None:
    whole = RefundReported(
        order_key=KEY, channel="tiktok_shop", refund_id="R9", amount=90_000, reason="return", refunded_at=AT
    )
    assert return_end([whole], ORDER) == AT
    less = whole.model_copy(update={"amount": 89_999})
    assert return_end([less], ORDER) is None


class Returns:
    """A TikTok Shop API double: the order above, and per order id the refunds its returns API lists."""

    channel = "tiktok_shop"

    def __init__(self, refunds: dict[str, list[ApiRefund]]) -> None:
        self._refunds = refunds

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        return ORDER

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        return None

    async def refunds(self, shop_id: str, order_id: str) -> list[ApiRefund]:
        return self._refunds.get(order_id, [])

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        return []


def api_refund(order_id: str, units: list[tuple[str, int, int]]) -> ApiRefund:
    lines = tuple(ApiRefundLine(None, sku, None, q, a) for sku, q, a in units)
    amount = sum(a for _, _, a in units)
    return ApiRefund("tiktok_shop", "7494", order_id, f"R{order_id}", amount, "return", AT, lines)


async def test_refunds_of_an_order_not_completed_are_published_only_when_they_end_it() -> None:
    """Before the payout nobody knows whether it will deduct a refund: a refund that does not end the order waits
    for the completion (read again then, with its netting); a return of every unit ends it and is published."""
    settings = GatewaySettings(**SECRETS)
    api = Returns(
        {"1": [api_refund("1", [("S1", 2, 50_000), ("S2", 1, 40_000)])], "2": [api_refund("2", [("S1", 1, 25_000)])]}
    )
    notices = {
        k: Notice("tiktok_shop", "7494", k.rsplit(":", 1)[1], "DELIVERED", AT)
        for k in ("tiktok_shop:7494:1", "tiktok_shop:7494:2")
    }
    fetched = await fetch(GatewayDeps(settings, {"tiktok_shop": api}), FetchPlan({}, {}, notices, frozenset(notices)))
    assert list(fetched.refunds) == list(fetched.returns_ended) == ["tiktok_shop:7494:1"]
    assert fetched.returns_ended["tiktok_shop:7494:1"] == AT
    completed = await fetch(GatewayDeps(settings, {"tiktok_shop": api}), FetchPlan({}, {}, notices))
    assert [len(completed.refunds[k]) for k in notices] == [1, 1] and not completed.returns_ended
