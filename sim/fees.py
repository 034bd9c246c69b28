"""Simulated marketplace fees and PPh 22 withholding (pure arithmetic on integer rupiah).

Every amount is ``round_half_up(base × rate)`` with the rate in basis points (1 bp = 0.01 %) and the result
in whole rupiah: ``(base × bps + 5000) // 10000``, i.e. exact halves round up. PPh 22 is 0.5 % (50 bp) of
gross turnover (PMK 37/2025). Net payout = gross − Σ fees − PPh 22, so ``net + fees + pph22 == gross``
holds exactly for every settlement.

The fee rates are invented demo values in the range marketplaces publish (uncertain, not a price list):
Shopee commission 4–8 % by category + service fee + seller transaction fee ~2 % (+ campaign fee for
campaign orders); TikTok Shop platform commission + transaction fee (+ affiliate commission for affiliate
sales); Tokopedia service fee; Blibli commission.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from services.contracts.channels import Channel
from services.orders.catalogue import ProductKind

__all__ = [
    "BASE_FEES_BPS",
    "CATEGORY_FEE",
    "PPH22_BPS",
    "SettlementAmounts",
    "compute_settlement",
    "fee_rates",
    "rate_amount",
]

PPH22_BPS: Final = 50
_BPS = 10_000

_K = ProductKind

#: The category-dependent fee of each channel: (fee name, bps per product kind).
CATEGORY_FEE: Final[Mapping[Channel, tuple[str, Mapping[ProductKind, int]]]] = MappingProxyType(
    {
        Channel.SHOPEE: (
            "commission_fee",
            {
                _K.GLOVES: 575,
                _K.WOODWORK: 650,
                _K.WOODEN_MAT: 650,
                _K.COCONUT_CRAFT: 650,
                _K.BATIK: 800,
                _K.FURNITURE: 425,
            },
        ),
        Channel.TIKTOK_SHOP: (
            "platform_commission",
            {
                _K.GLOVES: 450,
                _K.WOODWORK: 600,
                _K.WOODEN_MAT: 600,
                _K.COCONUT_CRAFT: 600,
                _K.BATIK: 750,
                _K.FURNITURE: 400,
            },
        ),
        Channel.TOKOPEDIA: (
            "service_fee",
            {
                _K.GLOVES: 475,
                _K.WOODWORK: 550,
                _K.WOODEN_MAT: 550,
                _K.COCONUT_CRAFT: 550,
                _K.BATIK: 650,
                _K.FURNITURE: 450,
            },
        ),
        Channel.BLIBLI: (
            "commission",
            {
                _K.GLOVES: 600,
                _K.WOODWORK: 800,
                _K.WOODEN_MAT: 800,
                _K.COCONUT_CRAFT: 800,
                _K.BATIK: 1000,
                _K.FURNITURE: 500,
            },
        ),
    }
)

#: Flat-rate fees of each channel (bps), charged on every settled order.
BASE_FEES_BPS: Final[Mapping[Channel, Mapping[str, int]]] = MappingProxyType(
    {
        Channel.SHOPEE: {"service_fee": 400, "seller_transaction_fee": 200},
        Channel.TIKTOK_SHOP: {"transaction_fee": 200},
        Channel.TOKOPEDIA: {},
        Channel.BLIBLI: {},
    }
)

#: Extra fees some orders carry: Shopee campaign orders, TikTok Shop affiliate sales.
CAMPAIGN_FEE_BPS: Final = ("campaign_fee", 200)
AFFILIATE_FEE_BPS: Final = ("affiliate_commission", 1000)


def rate_amount(base: int, bps: int) -> int:
    """``base × bps / 10000`` in whole rupiah, exact halves rounded up (``base``, ``bps`` ≥ 0)."""
    if base < 0 or bps < 0:
        raise ValueError(f"base and rate must not be negative, got {base} and {bps}")
    return (base * bps + _BPS // 2) // _BPS


def fee_rates(
    channel: Channel, kind: ProductKind, *, campaign: bool = False, affiliate: bool = False
) -> dict[str, int]:
    """Fee rates (bps by fee name) for one order of ``kind`` on ``channel``."""
    name, by_kind = CATEGORY_FEE[channel]
    rates = {name: by_kind[kind], **BASE_FEES_BPS[channel]}
    if campaign and channel is Channel.SHOPEE:
        rates[CAMPAIGN_FEE_BPS[0]] = CAMPAIGN_FEE_BPS[1]
    if affiliate and channel is Channel.TIKTOK_SHOP:
        rates[AFFILIATE_FEE_BPS[0]] = AFFILIATE_FEE_BPS[1]
    return rates


@dataclass(frozen=True, slots=True)
class SettlementAmounts:
    """Gross, fees by name, PPh 22 withheld and net payout of one settled amount, all whole rupiah."""

    gross: int
    fees: Mapping[str, int] = field(default_factory=dict)
    pph22: int = 0
    net: int = 0

    @property
    def fee_total(self) -> int:
        """Sum of the fees."""
        return sum(self.fees.values())


def compute_settlement(gross: int, rates_bps: Mapping[str, int]) -> SettlementAmounts:
    """Fees, PPh 22 and net payout of ``gross`` under ``rates_bps``; ``net + fees + pph22 == gross``.

    Raises:
        ValueError: negative gross or rate, or rates so high that the net payout would be negative.
    """
    if gross < 0:
        raise ValueError(f"gross must not be negative, got {gross}")
    fees = {name: rate_amount(gross, bps) for name, bps in rates_bps.items()}
    pph22 = rate_amount(gross, PPH22_BPS)
    net = gross - sum(fees.values()) - pph22
    if net < 0:
        raise ValueError(f"fees {fees} and PPh 22 {pph22} exceed the gross {gross}")
    return SettlementAmounts(gross=gross, fees=fees, pph22=pph22, net=net)
