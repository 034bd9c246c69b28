"""Settlements are told apart by content: a channel that reuses its settlement id for a later (partial or
adjusted) payout still gets that payout published, and a re-read of the same answer is not published twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.gateway.canonical import settlement_content_id, settlement_event
from services.gateway.clients.base import ApiSettlement
from services.gateway.emit import SettlementEmission

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
KEY = "tiktok_shop:7494:5763"


def api(net: int, *, fees: dict[str, int] | None = None, at: datetime = T0, sid: str = "ST-1") -> ApiSettlement:
    return ApiSettlement(
        channel="tiktok_shop",
        shop_id="7494",
        order_id="5763",
        settlement_id=sid,
        gross_amount=100_000,
        fees=fees if fees is not None else {"platform_commission": -5_000},
        pph22_withheld=-500,
        net_payout=net,
        settled_at=at,
    )


def emission_key(settlement: ApiSettlement) -> str:
    event = settlement_event(settlement, "tiktok_shop", KEY)
    assert event is not None
    return SettlementEmission(event).emission_key


def test_a_later_settlement_under_a_reused_id_is_a_settlement_of_its_own() -> None:
    first = settlement_event(api(94_500), "tiktok_shop", KEY)
    later = settlement_event(api(60_000, fees={"platform_commission": -3_000}), "tiktok_shop", KEY)
    assert first is not None and later is not None
    assert first.marketplace_settlement_id == later.marketplace_settlement_id == "ST-1"
    assert first.settlement_id != later.settlement_id
    assert first.settlement_id.startswith("ST-1-") and len(first.settlement_id) == len("ST-1-") + 16
    assert emission_key(api(94_500)) != emission_key(api(60_000, fees={"platform_commission": -3_000}))


def test_the_same_answer_read_again_later_is_the_same_settlement() -> None:
    assert emission_key(api(94_500)) == emission_key(api(94_500, at=T0 + timedelta(hours=5)))


@given(
    a=st.tuples(st.integers(0, 10**9), st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**9)),
    b=st.tuples(st.integers(0, 10**9), st.integers(0, 10**7), st.integers(0, 10**6), st.integers(0, 10**9)),
)
def test_content_ids_differ_exactly_when_the_money_differs(
    a: tuple[int, int, int, int], b: tuple[int, int, int, int]
) -> None:
    def cid(m: tuple[int, int, int, int]) -> str:
        return settlement_content_id(KEY, "S", m[0], {"fee": m[1]}, m[2], m[3])

    assert (cid(a) == cid(b)) == (a == b)
    assert settlement_content_id("other:1:2", "S", *a[:1], {"fee": a[1]}, a[2], a[3]) != cid(a)
