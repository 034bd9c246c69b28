"""Order lifecycles per channel, as data: status paths, scenario weights and which webhooks each step fires.

A scenario builds the list of :class:`StatusSpec` one order goes through (virtual gaps in seconds, the
webhooks fired, whether the step settles the order, and a refund). Every path is valid for its channel:
each status maps to a canonical state (``services.orders.domain.channels``) and the sequence only moves
forward or along an explicitly allowed edge (a rejected cancel request).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from services.contracts.channels import Channel

__all__ = ["SCENARIO_WEIGHTS", "StatusSpec", "build_scenario"]

_M, _H, _D = 60, 3600, 86_400

#: Happy paths: (status, (min gap, max gap) after the previous status).
PATHS: Final[Mapping[Channel, tuple[tuple[str, tuple[int, int]], ...]]] = MappingProxyType(
    {
        Channel.SHOPEE: (
            ("UNPAID", (0, 0)),
            ("READY_TO_SHIP", (1 * _M, 30 * _M)),
            ("PROCESSED", (1 * _H, 8 * _H)),
            ("SHIPPED", (2 * _H, 24 * _H)),
            ("TO_CONFIRM_RECEIVE", (1 * _D, 3 * _D)),
            ("COMPLETED", (1 * _D, 3 * _D)),
        ),
        Channel.TIKTOK_SHOP: (
            ("UNPAID", (0, 0)),
            ("ON_HOLD", (1 * _M, 30 * _M)),
            ("AWAITING_SHIPMENT", (1 * _H, 1 * _H)),  # the buyer's one-hour free-cancellation window
            ("AWAITING_COLLECTION", (1 * _H, 8 * _H)),
            ("IN_TRANSIT", (2 * _H, 24 * _H)),
            ("DELIVERED", (1 * _D, 3 * _D)),
            ("COMPLETED", (1 * _D, 3 * _D)),
        ),
        Channel.TOKOPEDIA: (
            ("220", (0, 0)),
            ("400", (10 * _M, 4 * _H)),
            ("450", (1 * _H, 8 * _H)),
            ("500", (2 * _H, 24 * _H)),
            ("600", (1 * _D, 3 * _D)),
            ("700", (1 * _D, 3 * _D)),
        ),
        Channel.BLIBLI: (("FP", (0, 0)), ("CX", (4 * _H, 24 * _H)), ("D", (1 * _D, 3 * _D))),
    }
)

#: Scenario → weight per channel (each channel's weights sum to 1).
SCENARIO_WEIGHTS: Final[Mapping[Channel, Mapping[str, float]]] = MappingProxyType(
    {
        Channel.SHOPEE: {
            "completed": 0.50,
            "oversold": 0.03,
            "partial_refund": 0.04,
            "netted_refund": 0.03,
            "in_flight": 0.08,
            "unpaid_expired": 0.14,
            "cancelled": 0.10,
            "cancel_rejected": 0.02,
            "returned": 0.06,
        },
        Channel.TIKTOK_SHOP: {
            "completed": 0.55,
            "oversold": 0.03,
            "partial_refund": 0.04,
            "in_flight": 0.08,
            "unpaid_expired": 0.12,
            "cancelled": 0.12,
            "returned": 0.06,
        },
        Channel.TOKOPEDIA: {
            "completed": 0.71,
            "oversold": 0.03,
            "partial_refund": 0.04,
            "in_flight": 0.08,
            "cancelled": 0.09,
            "returned": 0.05,
        },
        Channel.BLIBLI: {"completed": 0.79, "oversold": 0.03, "in_flight": 0.08, "cancelled": 0.10},
    }
)

_TOKOPEDIA_CANCEL = (
    ("0", "Dibatalkan penjual"),
    ("10", "Ditolak penjual: stok habis"),
    ("15", "Dibatalkan pembeli"),
    ("3", "Stok tidak tersedia"),
)
_TIKTOK_CANCEL_REASONS = ("Buyer changed mind", "Buyer wants to modify the order", "Found a better price")


@dataclass(frozen=True, slots=True)
class StatusSpec:
    """One lifecycle step before ids and offsets are fixed.

    ``refund`` is ``"full"`` (return) or ``"partial"``; a refund step whose status equals the previous one
    changes no status, only records the refund (and re-pushes the status webhook where the channel would).
    ``later`` pays the rest of a settled order days after its first payout (status unchanged): ``"adjustment"``,
    TikTok Shop's adjustment row in a later daily statement (the reserve it held back); ``"items"``, Blibli's
    settlement of the items it did not settle with the first.
    """

    status: str
    gap: int
    webhooks: tuple[str, ...] = ()
    settle: bool = False
    refund: str = ""
    reason: str = ""
    later: str = ""


def _webhooks(channel: Channel, status: str, first: bool) -> tuple[str, ...]:
    if channel is Channel.BLIBLI:
        return ()
    if channel is Channel.TOKOPEDIA:
        if first:
            return ("notification",)
        return ("cancellation",) if status in {"0", "3", "5", "6", "10", "15"} else ("status",)
    return ("status",)


def _path(channel: Channel, rng: random.Random, upto: int | None = None, cod: bool = False) -> list[StatusSpec]:
    steps = PATHS[channel][:upto]
    if cod and channel is Channel.SHOPEE:
        steps = steps[1:]  # cash on delivery: Shopee creates the order ready to ship
    specs = []
    for index, (status, (low, high)) in enumerate(steps):
        gap = 0 if index == 0 else rng.randint(low, high)
        specs.append(StatusSpec(status, gap, _webhooks(channel, status, index == 0)))
    return specs


def _cancelled(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    gap = rng.randint(10 * _M, 6 * _H)
    if channel is Channel.SHOPEE:
        steps = _path(channel, rng, 2)
        if rng.random() < 0.6:  # buyer asks, seller accepts
            steps.append(StatusSpec("IN_CANCEL", gap, ("status",)))
            gap = rng.randint(10 * _M, 12 * _H)
        return [*steps, StatusSpec("CANCELLED", gap, ("status",))]
    if channel is Channel.TIKTOK_SHOP:
        steps = _path(channel, rng, rng.choice((2, 3)))
        reason = rng.choice(_TIKTOK_CANCEL_REASONS)
        # The buyer's request (type 11 pending; the order status does not change), then the cancellation.
        asked = StatusSpec(steps[-1].status, gap, ("cancellation",), reason=reason)
        done = rng.randint(5 * _M, 2 * _H)
        return [*steps, asked, StatusSpec("CANCELLED", done, ("cancellation", "status"), reason=reason)]
    if channel is Channel.TOKOPEDIA:
        steps = _path(channel, rng, rng.choice((1, 2)))
        code, reason = rng.choice(_TOKOPEDIA_CANCEL)
        return [*steps, StatusSpec(code, gap, ("cancellation",), reason=reason)]
    return [*_path(channel, rng, 1), StatusSpec("X", gap)]


def _unpaid_expired(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    # The auto-cancel window of the unpaid order (24 h in services.orders.domain.channels).
    return [*_path(channel, rng, 1), StatusSpec("CANCELLED", _D, ("status",), reason="Payment overdue")]


def _completed(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    steps = _path(channel, rng, cod=rng.random() < 0.1)
    last = steps[-1]
    steps[-1] = StatusSpec(last.status, last.gap, last.webhooks, settle=True)
    return steps


#: Share of completed orders paid in two payouts days apart (invented demo figures): TikTok Shop holds a reserve
#: back for a later statement's adjustment row; Blibli settles an order's items on different days.
_PAID_LATER: Final[Mapping[Channel, tuple[str, float]]] = MappingProxyType(
    {Channel.TIKTOK_SHOP: ("adjustment", 0.3), Channel.BLIBLI: ("items", 0.4)}
)


def _completed_paid_later(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    """A completed order, some of whose money comes days after the first payout (:data:`_PAID_LATER`). TikTok
    Shop sends no webhook for a statement: the status is still pushed again with it (a second path; Karya's
    statement poller reads the statement without it, docs/gateway.md); Blibli is polled, so its later items need
    no webhook."""
    steps = _completed(channel, rng)
    kind, share = _PAID_LATER.get(channel, ("", 0.0))
    if not kind or rng.random() >= share:
        return steps
    last = steps[-1]
    hooks = ("status",) if channel is Channel.TIKTOK_SHOP else ()
    return [*steps, StatusSpec(last.status, rng.randint(1 * _D, 5 * _D), hooks, later=kind)]


def _partial_refund(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    steps = _completed(channel, rng)
    repush = ("status",) if channel in (Channel.SHOPEE, Channel.TIKTOK_SHOP) else ()
    refund = StatusSpec(steps[-1].status, rng.randint(1 * _D, 5 * _D), repush, refund="partial")
    return [*steps, refund]


def _netted_refund(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    """A partial refund agreed while the buyer still has to confirm receipt: the payout at completion is made
    net of it (Shopee's escrow shows it as ``seller_return_refund``)."""
    steps = _completed(channel, rng)
    waiting = steps[-2]
    refund = StatusSpec(waiting.status, rng.randint(1 * _H, 12 * _H), ("status",), refund="partial")
    return [*steps[:-1], refund, steps[-1]]


def _in_flight(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    return _path(channel, rng, rng.randint(2, len(PATHS[channel]) - 1))


def _cancel_rejected(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    steps = _completed(channel, rng)  # Shopee only: IN_CANCEL, then back to READY_TO_SHIP
    back = [
        StatusSpec("IN_CANCEL", rng.randint(5 * _M, 30 * _M), ("status",)),
        StatusSpec("READY_TO_SHIP", rng.randint(1 * _H, 6 * _H), ("status",)),
    ]
    paid = next(i for i, s in enumerate(steps) if s.status == "READY_TO_SHIP")
    return [*steps[: paid + 1], *back, *steps[paid + 1 :]]


#: The order status a return request puts the order in (TikTok Shop keeps the order DELIVERED: its return is a
#: record of the returns API, which no order status shows).
_RETURN_REQUEST: Final[Mapping[Channel, str]] = MappingProxyType(
    {Channel.SHOPEE: "TO_RETURN", Channel.TIKTOK_SHOP: "DELIVERED", Channel.TOKOPEDIA: "601"}
)
_RETURN_REJECTED = 0.25  # share of return requests the marketplace rejects (invented demo figure)


def _returned(channel: Channel, rng: random.Random) -> list[StatusSpec]:
    """The buyer asks to return a delivered order and the marketplace carries the return to its end: accepted,
    the buyer is refunded in full (the returns API reports it refunded and the status is pushed again); rejected,
    the order goes on to completion and is paid out (``ALLOWED_EDGES`` return requested → completed)."""
    steps = _path(channel, rng)
    delivered = next(i for i, s in enumerate(steps) if s.status == PATHS[channel][-2][0])
    asked = _RETURN_REQUEST[channel]
    request = [] if asked == steps[delivered].status else [StatusSpec(asked, rng.randint(2 * _H, 2 * _D), ("status",))]
    if rng.random() < _RETURN_REJECTED:
        done = steps[-1]
        end = [StatusSpec(done.status, rng.randint(1 * _D, 3 * _D), done.webhooks, settle=True)]
    elif channel is Channel.TOKOPEDIA:
        # Tokopedia's status push has no time: a second 601 would be a duplicate, so the case is opened and
        # resolved in one step (the refund is there when the 601 is read).
        request[-1] = StatusSpec(asked, request[-1].gap, ("status",), refund="full")
        end = []
    else:
        end = [StatusSpec(asked, rng.randint(1 * _D, 5 * _D), ("status",), refund="full")]
    return [*steps[: delivered + 1], *request, *end]


_BUILDERS: Final[Mapping[str, Callable[[Channel, random.Random], list[StatusSpec]]]] = MappingProxyType(
    {
        "completed": _completed_paid_later,
        # completed and paid, but for more units than the workshops ever produced (:func:`sim.plan.plan_day`): the
        # reservation fails and the ledger holds the proceeds in unallocated until a person allocates them
        "oversold": _completed,
        "partial_refund": _partial_refund,
        "netted_refund": _netted_refund,
        "in_flight": _in_flight,
        "unpaid_expired": _unpaid_expired,
        "cancelled": _cancelled,
        "cancel_rejected": _cancel_rejected,
        "returned": _returned,
    }
)


def build_scenario(channel: Channel, scenario: str, rng: random.Random) -> list[StatusSpec]:
    """The steps of one order of ``scenario`` on ``channel`` (see :data:`SCENARIO_WEIGHTS`)."""
    if scenario not in SCENARIO_WEIGHTS[channel]:
        raise ValueError(f"scenario {scenario!r} is not simulated for {channel.value}")
    return _BUILDERS[scenario](channel, rng)
