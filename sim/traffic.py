"""Replay a :class:`sim.plan.Plan` against the simulated marketplaces and POST its webhooks to the gateway.

Status steps change :class:`sim.state.SimState` (so the seller APIs answer with the new state) and build the
webhooks they fire; delivery steps POST them, concurrently but bounded, in plan order. Timestamps are the
real clock by default, rounded up and strictly increasing per order (``max(ceil(now), previous + 1)``),
so that pollers asking for "changes up to now" see every change; pass ``anchor`` (unix seconds of the
virtual day's start) to stamp ``anchor + offset`` instead, which makes a run fully reproducible.

Counters (:class:`TrafficSummary`) say what was sent and how the gateway answered, per channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from services.contracts.channels import Channel
from sim.fees import SettlementAmounts, compute_settlement
from sim.plan import Plan, PlannedOrder, Step, StepKind
from sim.settings import SimSettings, require_loopback
from sim.state import SimLine, SimOrder, SimRefund, SimRefundLine, SimSettlement, SimState
from sim.webhooks import Outgoing, RetryPolicy, build_webhook, corrupt, deliver

__all__ = ["ChannelCounters", "Progress", "TrafficRunner", "TrafficSummary"]

ProgressCallback = Callable[[int, int], None]
_BAD_COPIES = frozenset({"tampered", "wrong_secret"})
_FAULT_COUNTERS = {"duplicate": "duplicates", "late": "late", "out_of_order": "out_of_order"}


@dataclass
class ChannelCounters:
    """What happened on one channel.

    ``webhooks_sent`` counts deliveries (a duplicate or a bad copy is a delivery of its own, retries are not);
    each delivery ends ``accepted`` (2xx), ``rejected`` (another HTTP status) or ``failed`` (no answer).
    ``expected_rejected`` are the deliberately bad copies answered 4xx; ``bad_copies_accepted`` should be 0.
    """

    orders: int = 0
    status_changes: int = 0
    settlements: int = 0
    refunds: int = 0
    webhooks_sent: int = 0
    webhooks_accepted: int = 0
    webhooks_rejected: int = 0
    webhooks_failed: int = 0
    expected_rejected: int = 0
    bad_copies_accepted: int = 0
    attempts: int = 0
    duplicates: int = 0
    late: int = 0
    out_of_order: int = 0
    lost: int = 0
    rejected_by_status: dict[str, int] = field(default_factory=dict)


@dataclass
class TrafficSummary:
    """Totals of a run and the counters per channel."""

    seed: int
    orders: int
    elapsed_s: float = 0.0
    channels: dict[str, ChannelCounters] = field(default_factory=dict)

    def total(self, name: str) -> int:
        """Sum of one :class:`ChannelCounters` field over the channels."""
        return sum(int(getattr(c, name)) for c in self.channels.values())

    @property
    def webhooks_sent(self) -> int:
        """Deliveries made (duplicates and bad copies included, retries not)."""
        return self.total("webhooks_sent")

    @property
    def webhooks_rejected(self) -> int:
        """Deliveries finally answered with a non-2xx status (expected rejections included)."""
        return self.total("webhooks_rejected")

    @property
    def unexpected_rejections(self) -> int:
        """Non-2xx answers to genuine webhooks, plus deliveries that never got an answer."""
        return self.webhooks_rejected - self.total("expected_rejected") + self.total("webhooks_failed")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary: totals first, then per channel."""
        totals = {
            name: self.total(name) for name in ChannelCounters.__dataclass_fields__ if name != "rejected_by_status"
        }
        return {
            "seed": self.seed,
            "orders": self.orders,
            "elapsed_s": round(self.elapsed_s, 3),
            **totals,
            "unexpected_rejections": self.unexpected_rejections,
            "channels": {name: asdict(c) for name, c in sorted(self.channels.items())},
        }


@dataclass
class Progress:
    """Steps done out of the plan's total (status changes, lost webhooks and webhook deliveries), and of them the
    webhooks sent (each with its final answer) out of those the plan delivers."""

    done: int = 0
    total: int = 0
    running: bool = False
    webhooks_sent: int = 0
    webhooks_planned: int = 0


class TrafficRunner:
    """Executes plans against one :class:`SimState` and one gateway."""

    def __init__(
        self,
        state: SimState,
        settings: SimSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        anchor: int | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gateway_url = require_loopback(settings.sim_gateway_url)
        self.state = state
        self.settings = settings
        self.progress = Progress()
        self._transport = transport
        self._concurrency = max(1, concurrency)
        self._retry = retry or RetryPolicy()
        self._anchor = anchor
        self._clock = clock
        self._sleep = sleep

    async def run(self, plan: Plan, on_progress: ProgressCallback | None = None) -> TrafficSummary:
        """Replay ``plan``; returns when every step is done and every delivery has its final answer."""
        clash = [o.order_id for o in plan.orders if self.state.get(o.channel, o.order_id) is not None]
        if clash:
            raise ValueError(f"{len(clash)} order ids already exist (same seed twice?), e.g. {clash[:3]}")
        started = time.monotonic()
        summary = TrafficSummary(seed=plan.seed, orders=len(plan.orders))
        for o in plan.orders:
            summary.channels.setdefault(o.channel.value, ChannelCounters()).orders += 1
        deliveries = sum(1 for step in plan.steps if step.kind is StepKind.DELIVER)
        self.progress = Progress(0, len(plan.steps), running=True, webhooks_planned=deliveries)
        outgoing: dict[tuple[int, int, int], Outgoing] = {}
        live: dict[int, SimOrder] = {}
        last: dict[int, int] = {}
        slots = asyncio.Semaphore(self._concurrency)
        tasks: set[asyncio.Task[None]] = set()

        def advance() -> None:
            self.progress.done += 1
            if on_progress is not None:
                on_progress(self.progress.done, self.progress.total)

        async with httpx.AsyncClient(transport=self._transport, follow_redirects=False) as http:
            try:
                for number, step in enumerate(plan.steps):
                    if number % 64 == 0:
                        await asyncio.sleep(0)  # let the seller APIs on this loop answer meanwhile
                    planned = plan.orders[step.order]
                    counters = summary.channels[planned.channel.value]
                    if step.kind is StepKind.STATUS:
                        ts = self._stamp(step, last)
                        self._apply(planned, step.index, ts, live, outgoing, counters)
                        advance()
                    elif step.kind is StepKind.LOST:
                        counters.lost += 1
                        advance()
                    else:
                        message = outgoing[(step.order, step.index, step.webhook)]
                        if step.fault in _BAD_COPIES:
                            message = corrupt(message, step.fault)
                        await slots.acquire()
                        task = asyncio.create_task(self._send(http, message, step, counters, slots, advance))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
                self.progress.running = False
        summary.elapsed_s = time.monotonic() - started
        return summary

    def _stamp(self, step: Step, last: dict[int, int]) -> int:
        # Real time rounds up: a change is never stamped earlier than the moment it becomes visible, so a
        # poller whose windows leave no gaps cannot step past it.
        now = self._anchor + step.offset if self._anchor is not None else math.ceil(self._clock())
        ts = max(now, last.get(step.order, 0) + 1)
        last[step.order] = ts
        return ts

    def _apply(
        self,
        planned: PlannedOrder,
        index: int,
        ts: int,
        live: dict[int, SimOrder],
        outgoing: dict[tuple[int, int, int], Outgoing],
        counters: ChannelCounters,
    ) -> None:
        status = planned.statuses[index]
        if index == 0:
            lines = tuple(
                SimLine(line.listing, line.quantity, line.unit_price, f"{planned.order_id}{n + 1:02d}")
                for n, line in enumerate(planned.lines)
            )
            order = SimOrder(
                channel=planned.channel,
                shop_id=planned.shop_id,
                order_id=planned.order_id,
                lines=lines,
                created_at=ts,
                shipping_cost=planned.shipping_cost,
                invoice=planned.invoice,
                float_amounts=planned.float_amounts,
            )
            live[planned.index] = self.state.create(order, status.raw_status, ts)
            counters.status_changes += 1
        else:
            order = live[planned.index]
            if status.raw_status != order.status or not status.refund_amount:
                self.state.set_status(order, status.raw_status, ts)
                counters.status_changes += 1
        if status.settle or status.later:
            for payout in _payouts(planned, order, index, ts):
                self.state.settle(order, payout)
                counters.settlements += 1
        if status.refund_amount:
            parts = tuple(SimRefundLine(*part) for part in status.refund_lines)
            refund = SimRefund(status.refund_id, status.refund_amount, status.refund_reason, ts, parts)
            self.state.refund(order, refund)
            counters.refunds += 1
        for k, hook in enumerate(status.webhooks):
            outgoing[(planned.index, index, k)] = build_webhook(
                order, hook.kind, self.settings, ts, hook.notification_id, status.reason
            )

    async def _send(
        self,
        http: httpx.AsyncClient,
        message: Outgoing,
        step: Step,
        counters: ChannelCounters,
        slots: asyncio.Semaphore,
        advance: Callable[[], None],
    ) -> None:
        try:
            result = await deliver(http, self.gateway_url, message, self._retry, self._sleep)
        finally:
            slots.release()
        counters.webhooks_sent += 1
        self.progress.webhooks_sent += 1
        counters.attempts += result.attempts
        if step.fault in _FAULT_COUNTERS:
            name = _FAULT_COUNTERS[step.fault]
            setattr(counters, name, getattr(counters, name) + 1)
        bad_copy = step.fault in _BAD_COPIES
        if result.status is None:
            counters.webhooks_failed += 1
        elif result.accepted:
            counters.webhooks_accepted += 1
            counters.bad_copies_accepted += int(bad_copy)
        else:
            counters.webhooks_rejected += 1
            counters.expected_rejected += int(bad_copy and 400 <= result.status < 500)
            key = str(result.status)
            counters.rejected_by_status[key] = counters.rejected_by_status.get(key, 0) + 1
        advance()


def clawed_back(settlement_id: str) -> bool:
    """Whether a TikTok Shop order paid later gets a claw-back instead (a quarter of them, by its settlement id):
    the daily statement pays the whole order and a later statement's adjustment row takes a tenth back (negative
    revenue and settlement amounts; its fees and PPh 22 are given back)."""
    return int(hashlib.sha256(settlement_id.encode()).hexdigest(), 16) % 4 == 0


def _payouts(planned: PlannedOrder, order: SimOrder, index: int, ts: int) -> list[SimSettlement]:
    """The payouts status ``index`` makes: at completion (``settle``) the first, days later (``later``) the rest.

    Blibli settles per order item (one settlement per line): all at completion, or the first item then the others.
    TikTok Shop pays an order in its daily statement; one whose reserve was held back gets it in a later statement's
    adjustment row (its own id; each row has its gross, fees, PPh 22 and net), or for some (:func:`clawed_back`) is
    paid in whole and a later row takes a tenth back. The first payout of the others is net
    of the refunds made before it (the marketplace deducts them: Shopee's ``seller_return_refund``)."""
    status = planned.statuses[index]
    later = next((s.later for s in planned.statuses if s.later), "")
    rates = planned.fee_rates
    if planned.channel is Channel.BLIBLI:
        lines = range(len(order.lines))
        if later == "items":
            lines = range(1) if status.settle else range(1, len(order.lines))
        return [
            SimSettlement(f"{planned.settlement_id}{n:02d}", ts, (compute_settlement(order.lines[n].total, rates),), n)
            for n in lines
        ]
    reserve = compute_settlement(order.gross // 10 // 100 * 100 if later == "adjustment" else 0, rates)
    whole = compute_settlement(order.gross, rates)
    if later == "adjustment" and clawed_back(planned.settlement_id) and not order.refunds:
        # The daily statement paid the whole order; a later statement's adjustment row takes a tenth back.
        if status.later:
            taken = SettlementAmounts(
                -reserve.gross, {n: -f for n, f in reserve.fees.items()}, -reserve.pph22, -reserve.net
            )
            return [SimSettlement(f"{planned.settlement_id}01", ts, (taken,))] if reserve.gross else []
        return [SimSettlement(planned.settlement_id, ts, (whole,))]
    if status.later:
        return [SimSettlement(f"{planned.settlement_id}01", ts, (reserve,))] if reserve.gross else []
    first = SettlementAmounts(
        gross=whole.gross - reserve.gross,
        fees={name: fee - reserve.fees.get(name, 0) for name, fee in whole.fees.items()},
        pph22=whole.pph22 - reserve.pph22,
        net=whole.net - reserve.net - sum(r.amount for r in order.refunds if r.refunded_at <= ts),
    )
    return [SimSettlement(planned.settlement_id, ts, (first,))]
