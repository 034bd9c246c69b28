"""A deterministic plan for "a marketplace day": orders, their lifecycles and every webhook delivery.

:func:`plan_day` turns (catalogue, number of orders, seed, channel mix, fault rates) into a :class:`Plan`;
the same inputs always give the same plan. Orders use the catalogue's listings (Bukalapak excluded) and stay
within each SKU's produced stock. Steps are ordered by a virtual clock (seconds since the start of the day);
the runner (:mod:`sim.traffic`) executes them in that order. Delivery faults are planned too: lost webhooks
(never sent: only the backstop poller finds the change), late and out-of-order deliveries, duplicates (the
same bytes again) and, on request, deliberately bad copies (tampered body, wrong secret) that the gateway
must reject with 401.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from services.contracts.channels import Channel
from services.orders.catalogue import Catalogue, Listing
from sim.fees import fee_rates
from sim.lifecycles import SCENARIO_WEIGHTS, build_scenario

__all__ = [
    "DEFAULT_MIX",
    "FaultRates",
    "Plan",
    "PlannedLine",
    "PlannedOrder",
    "PlannedStatus",
    "PlannedWebhook",
    "Step",
    "StepKind",
    "plan_day",
]

DEFAULT_MIX: Mapping[str, float] = {"shopee": 0.35, "tiktok_shop": 0.30, "tokopedia": 0.20, "blibli": 0.15}
_DAY = 86_400
_STOCK_SHARE = 0.9  # plan at most this share of a SKU's produced units
# Orders per hour of the day (relative): quiet nights, lunch and evening peaks.
_HOURLY = (1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 7, 8, 7, 6, 6, 6, 7, 8, 10, 11, 10, 7, 3)


class StepKind(StrEnum):
    """What a plan step does."""

    STATUS = "status"  # apply a status change (and settlement/refund) to the marketplace state
    DELIVER = "deliver"  # POST one webhook to the gateway
    LOST = "lost"  # a webhook the marketplace never delivers (counted only)


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Probabilities per webhook (lost, late, out of order, duplicated) and counts of bad copies."""

    lost: float = 0.01
    late: float = 0.03
    out_of_order: float = 0.03
    duplicate: float = 0.04
    tampered: int = 0  # extra copies whose body is changed after signing
    wrong_secret: int = 0  # extra copies signed with a secret the gateway does not know

    def __post_init__(self) -> None:
        if min(self.lost, self.late, self.out_of_order, self.duplicate) < 0:
            raise ValueError("fault rates must not be negative")
        if self.lost + self.late + self.out_of_order > 1:
            raise ValueError("lost + late + out_of_order must not exceed 1")
        if self.tampered < 0 or self.wrong_secret < 0:
            raise ValueError("bad-copy counts must not be negative")


@dataclass(frozen=True, slots=True)
class PlannedLine:
    """One line: listing, quantity, unit price (whole rupiah)."""

    listing: Listing
    quantity: int
    unit_price: int


@dataclass(frozen=True, slots=True)
class PlannedWebhook:
    """One webhook a status change fires: its kind and (TikTok Shop) notification id."""

    kind: str
    notification_id: str = ""


@dataclass(frozen=True, slots=True)
class PlannedStatus:
    """One lifecycle step at ``offset`` virtual seconds; may settle the order or record a refund."""

    raw_status: str
    offset: int
    webhooks: tuple[PlannedWebhook, ...] = ()
    settle: bool = False
    refund_amount: int = 0
    refund_reason: str = ""  # "return" | "partial"
    refund_id: str = ""
    reason: str = ""  # cancellation reason text
    refund_lines: tuple[tuple[int, int, int], ...] = ()  # (line index, quantity, amount) of the refund
    later: str = ""  # pays the rest of a settled order: "adjustment" (TikTok Shop) | "items" (Blibli)


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An order with everything needed to replay it."""

    index: int
    channel: Channel
    shop_id: str
    order_id: str
    scenario: str
    lines: tuple[PlannedLine, ...]
    statuses: tuple[PlannedStatus, ...]
    shipping_cost: int
    fee_rates: Mapping[str, int]
    settlement_id: str
    invoice: str = ""
    float_amounts: bool = False

    @property
    def gross(self) -> int:
        """Product total."""
        return sum(line.quantity * line.unit_price for line in self.lines)


@dataclass(frozen=True, slots=True, order=True)
class Step:
    """One action; steps sort by virtual time, status changes before deliveries at the same time."""

    offset: int
    rank: int  # 0 status, 1 delivery
    order: int
    index: int
    webhook: int = 0
    seq: int = 0
    kind: StepKind = field(default=StepKind.STATUS, compare=False)
    fault: str = field(default="", compare=False)  # duplicate | late | out_of_order | tampered | wrong_secret

    def sort_key(self) -> tuple[int, int, int, int, int, int]:
        """Plan order: virtual time, status before delivery, then order, status, webhook, copy."""
        return (self.offset, self.rank, self.order, self.index, self.webhook, self.seq)


@dataclass(frozen=True)
class Plan:
    """A whole day: orders and the ordered steps that replay it."""

    seed: int
    orders: tuple[PlannedOrder, ...]
    steps: tuple[Step, ...]


def _split(total: int, mix: Mapping[str, float]) -> list[Channel]:
    """Exactly ``total`` channels in proportion to ``mix`` (largest remainder, ties in mix order)."""
    weight = sum(mix.values())
    if weight <= 0 or any(w < 0 for w in mix.values()):
        raise ValueError(f"channel mix must have non-negative weights with a positive sum, got {dict(mix)}")
    exact = {c: total * w / weight for c, w in mix.items()}
    counts = {c: int(x) for c, x in exact.items()}
    for c in sorted(exact, key=lambda c: counts[c] - exact[c])[: total - sum(counts.values())]:
        counts[c] += 1
    return [Channel(c) for c, n in counts.items() for _ in range(n)]


class _Ids:
    """Channel-shaped, unique order and notification ids from the plan's random generator."""

    def __init__(self, rng: random.Random, day: date) -> None:
        self._rng = rng
        self._day = day
        self._seen: set[str] = set()

    def _unique(self, make: object) -> str:
        assert callable(make)
        while True:
            value = str(make())
            if value not in self._seen:
                self._seen.add(value)
                return value

    def order_id(self, channel: Channel, offset: int) -> str:
        r = self._rng
        when = self._day + timedelta(seconds=offset)
        if channel is Channel.SHOPEE:
            alphabet = string.digits + string.ascii_uppercase
            return self._unique(lambda: when.strftime("%y%m%d") + "".join(r.choices(alphabet, k=8)))
        if channel is Channel.TIKTOK_SHOP:
            return self._unique(lambda: f"57{r.randrange(10**15, 10**16)}")
        if channel is Channel.TOKOPEDIA:
            return self._unique(lambda: r.randrange(1_000_000_000, 2_000_000_000))
        return self._unique(lambda: f"12{r.randrange(10**8, 10**9)}")

    def numeric(self, prefix: str, digits: int) -> str:
        return self._unique(lambda: f"{prefix}{self._rng.randrange(10 ** (digits - 1), 10**digits)}")


def _pick_lines(
    rng: random.Random, listings: list[Listing], budget: dict[str, int], catalogue: Catalogue
) -> tuple[PlannedLine, ...]:
    for _ in range(50):
        first = rng.choice(listings)
        shop = [x for x in listings if x.shop_id == first.shop_id and x is not first]
        count = rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
        chosen = [first, *rng.sample(shop, min(count - 1, len(shop)))]
        lines = []
        need: Counter[str] = Counter()
        for listing in chosen:
            quantity = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
            price = catalogue.products_by_sku[listing.sku].list_price_idr
            if rng.random() < 0.2:  # seller discount of 5-15 %, to whole hundreds of rupiah
                price = max(100, price * (100 - rng.randint(5, 15)) // 100 // 100 * 100)
            lines.append(PlannedLine(listing, quantity, price))
            need[listing.sku] += quantity
        if all(budget.get(sku, 0) >= n for sku, n in need.items()):
            for sku, n in need.items():
                budget[sku] -= n
            return tuple(lines)
    raise ValueError("the catalogue's stock is too small for this many orders (planned demand per SKU is capped)")


def plan_day(
    catalogue: Catalogue,
    orders: int = 2000,
    seed: int = 1,
    mix: Mapping[str, float] | None = None,
    faults: FaultRates | None = None,
    day: date = date(2026, 11, 1),
) -> Plan:
    """Plan ``orders`` orders across channels; the same arguments always give the same plan.

    ``mix`` weights channels (default :data:`DEFAULT_MIX`); ``day`` only shapes ids (Shopee order numbers,
    Tokopedia invoices). Raises ValueError for a bad mix, a channel without listings, or too little stock.
    """
    if orders < 0:
        raise ValueError(f"orders must not be negative, got {orders}")
    rng = random.Random(seed)
    faults = faults or FaultRates()
    ids = _Ids(rng, day)
    listings: dict[Channel, list[Listing]] = {}
    for listing in catalogue.listings:
        listings.setdefault(listing.channel, []).append(listing)
    produced: Counter[str] = Counter()
    for batch in catalogue.batches:
        produced[batch.sku] += batch.produced_qty
    budget = {sku: int(qty * _STOCK_SHARE) for sku, qty in produced.items()}

    channels = _split(orders, mix or DEFAULT_MIX)
    rng.shuffle(channels)
    stock = _Stock(budget, produced)
    planned = [_plan_order(i, c, rng, ids, listings, stock, catalogue, day) for i, c in enumerate(channels)]
    return Plan(seed=seed, orders=tuple(planned), steps=tuple(sorted(_steps(planned, rng, faults), key=Step.sort_key)))


@dataclass(frozen=True, slots=True)
class _Stock:
    """What the plan may still sell per SKU (``budget``) and what was produced of it."""

    budget: dict[str, int]
    produced: Mapping[str, int]


def _oversold_line(listings: list[Listing], produced: Mapping[str, int], catalogue: Catalogue) -> PlannedLine:
    """One unit more than was ever produced of the channel's cheapest such line: no arrival order can reserve it."""

    def cost(listing: Listing) -> tuple[int, str]:
        return (produced[listing.sku] + 1) * catalogue.products_by_sku[listing.sku].list_price_idr, listing.sku

    listing = min((x for x in listings if produced.get(x.sku)), key=cost)
    return PlannedLine(listing, produced[listing.sku] + 1, catalogue.products_by_sku[listing.sku].list_price_idr)


def _plan_order(
    index: int,
    channel: Channel,
    rng: random.Random,
    ids: _Ids,
    listings: Mapping[Channel, list[Listing]],
    stock: _Stock,
    catalogue: Catalogue,
    day: date,
) -> PlannedOrder:
    if not listings.get(channel):
        raise ValueError(f"the catalogue has no {channel.value} listings")
    hour = rng.choices(range(24), weights=_HOURLY)[0]
    offset = hour * 3600 + rng.randrange(3600)
    weights = SCENARIO_WEIGHTS[channel]
    scenario = rng.choices(list(weights), weights=list(weights.values()))[0]
    if scenario == "oversold":
        lines: tuple[PlannedLine, ...] = (_oversold_line(listings[channel], stock.produced, catalogue),)
    else:
        lines = _pick_lines(rng, listings[channel], stock.budget, catalogue)
    order_id = ids.order_id(channel, offset)
    gross = sum(line.quantity * line.unit_price for line in lines)
    statuses: list[PlannedStatus] = []
    for spec in build_scenario(channel, scenario, rng):
        offset += max(spec.gap, 1) if statuses else 0
        hooks = tuple(
            PlannedWebhook(kind, ids.numeric("73", 17) if channel is Channel.TIKTOK_SHOP else "")
            for kind in spec.webhooks
        )
        refund = 0
        refund_lines: tuple[tuple[int, int, int], ...] = ()
        if spec.refund == "full":
            refund = gross
            refund_lines = tuple((n, line.quantity, line.quantity * line.unit_price) for n, line in enumerate(lines))
        elif spec.refund == "partial":  # one unit back, or a goodwill refund for a single-unit order
            units = [(n, line.unit_price) for n, line in enumerate(lines) for _ in range(line.quantity)]
            share = gross * rng.randint(10, 30) // 100 // 100 * 100
            # the same draws as before lines were recorded, so a seed still plans the same day
            unit = rng.choice(units) if len(units) > 1 else (units[0][0], max(100, share))
            refund = min(gross, unit[1])
            refund_lines = ((unit[0], 1, refund),)
        statuses.append(
            PlannedStatus(
                raw_status=spec.status,
                offset=offset,
                webhooks=hooks,
                settle=spec.settle,
                refund_amount=refund,
                refund_reason={"full": "return", "partial": "partial"}.get(spec.refund, ""),
                refund_id=ids.numeric("RF", 12) if refund else "",
                refund_lines=refund_lines,
                reason=spec.reason,
                later=spec.later,
            )
        )
    main = max(lines, key=lambda line: line.quantity * line.unit_price)
    kind = catalogue.products_by_sku[main.listing.sku].kind
    rates = fee_rates(channel, kind, campaign=rng.random() < 0.1, affiliate=rng.random() < 0.15)
    return PlannedOrder(
        index=index,
        channel=channel,
        shop_id=lines[0].listing.shop_id,
        order_id=order_id,
        scenario=scenario,
        lines=lines,
        statuses=tuple(statuses),
        shipping_cost=rng.choice((0, 9000, 10000, 12000, 15000, 18000, 22000)),
        fee_rates=rates,
        settlement_id=ids.numeric("7", 18),
        invoice=f"INV/{(day + timedelta(seconds=statuses[0].offset)):%Y%m%d}/MPL/{order_id}"
        if channel is Channel.TOKOPEDIA
        else "",
        float_amounts=channel is Channel.TOKOPEDIA and rng.random() < 0.1,
    )


def _steps(orders: list[PlannedOrder], rng: random.Random, faults: FaultRates) -> list[Step]:
    steps: list[Step] = []
    deliverable: list[tuple[int, int, int, int]] = []
    for o in orders:
        for i, status in enumerate(o.statuses):
            steps.append(Step(status.offset, 0, o.index, i))
            for k, _hook in enumerate(status.webhooks):
                deliverable.append((status.offset, o.index, i, k))
                roll = rng.random()
                if roll < faults.lost:
                    steps.append(Step(status.offset, 1, o.index, i, k, kind=StepKind.LOST))
                    continue
                at, fault = status.offset, ""
                if roll < faults.lost + faults.late:
                    at, fault = status.offset + rng.randint(3600, 12 * 3600), "late"
                elif roll < faults.lost + faults.late + faults.out_of_order and i + 1 < len(o.statuses):
                    at, fault = o.statuses[i + 1].offset + rng.randint(1, 600), "out_of_order"
                steps.append(Step(at, 1, o.index, i, k, kind=StepKind.DELIVER, fault=fault))
                if rng.random() < faults.duplicate:
                    again = at + rng.randint(1, 900)
                    steps.append(Step(again, 1, o.index, i, k, seq=1, kind=StepKind.DELIVER, fault="duplicate"))
    bad = ["tampered"] * faults.tampered + ["wrong_secret"] * faults.wrong_secret
    if bad and not deliverable:
        raise ValueError("bad webhook copies requested but the plan has no webhooks")
    for n, fault in enumerate(bad):
        offset, order, i, k = rng.choice(deliverable)
        steps.append(Step(offset + 1, 1, order, i, k, seq=2 + n, kind=StepKind.DELIVER, fault=fault))
    return steps
