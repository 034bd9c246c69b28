"""Settlement arithmetic: fees and PPh 22 in whole rupiah, rounded half up, net + fees + PPh 22 == gross."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.orders.catalogue import Channel, ProductKind
from sim.fees import PPH22_BPS, compute_settlement, fee_rates, rate_amount


def test_round_half_up_at_exact_halves() -> None:
    assert rate_amount(100, 50) == 1  # 0.5 -> 1
    assert rate_amount(99, 50) == 0  # 0.495 -> 0
    assert rate_amount(300, 50) == 2  # 1.5 -> 2
    assert rate_amount(150_000, PPH22_BPS) == 750


def test_a_shopee_settlement() -> None:
    rates = fee_rates(Channel.SHOPEE, ProductKind.GLOVES, campaign=True)
    assert rates == {
        "commission_fee": 575,
        "service_fee": 400,
        "seller_transaction_fee": 200,
        "campaign_fee": 200,
    }
    s = compute_settlement(50_000, rates)
    assert s.fees == {
        "commission_fee": 2875,
        "service_fee": 2000,
        "seller_transaction_fee": 1000,
        "campaign_fee": 1000,
    }
    assert (s.pph22, s.net) == (250, 50_000 - 6875 - 250)


def test_rates_above_the_gross_are_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        compute_settlement(1000, {"everything": 10_000})


@given(
    gross=st.integers(min_value=0, max_value=10**12),
    channel=st.sampled_from([Channel.SHOPEE, Channel.TIKTOK_SHOP, Channel.TOKOPEDIA, Channel.BLIBLI]),
    kind=st.sampled_from(list(ProductKind)),
    campaign=st.booleans(),
    affiliate=st.booleans(),
)
def test_net_plus_fees_plus_pph22_is_gross(
    gross: int, channel: Channel, kind: ProductKind, campaign: bool, affiliate: bool
) -> None:
    s = compute_settlement(gross, fee_rates(channel, kind, campaign=campaign, affiliate=affiliate))
    amounts = [s.gross, s.pph22, s.net, *s.fees.values()]
    assert all(type(a) is int and a >= 0 for a in amounts)
    assert s.net + s.fee_total + s.pph22 == gross
    # Each amount is the exact product rounded half up: within half a rupiah of it.
    assert abs(2 * 10_000 * s.pph22 - 2 * gross * PPH22_BPS) <= 10_000


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=10_000))
def test_rate_amount_is_the_nearest_integer_halves_up(base: int, bps: int) -> None:
    exact_times_2 = 2 * base * bps  # 20000 × the exact amount
    got = rate_amount(base, bps)
    assert 20_000 * got - 10_000 <= exact_times_2 < 20_000 * got + 10_000
