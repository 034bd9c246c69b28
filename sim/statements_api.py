"""Simulated TikTok Shop Finance API (202309): the shop's statements and each statement's transactions.

TikTok Shop sends no webhook for a statement; Karya's statement poller lists the statements by
``statement_time`` and reads their transactions. Here a statement is every TikTok Shop payout of one shop made
on one UTC day (:class:`sim.state.SimSettlement`: the first statement row of an order, an adjustment days later),
its ``statement_time`` the latest of them (a simplification: the real statement is issued once a day). Requests
are authenticated by the channel's signing check, passed in by :func:`sim.api.create_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request

from services.contracts.channels import Channel
from sim import render
from sim.state import SimOrder, SimSettlement, SimState

__all__ = ["SimStatement", "add_statement_routes", "statements_of"]

Json = dict[str, Any]
STATEMENTS = "/finance/202309/statements"
ROWS = "/finance/202309/statements/{statement_id}/statement_transactions"


class SimStatement:
    """One shop's payouts of one UTC day: ``rows`` are (order, payout)."""

    def __init__(self, statement_id: str) -> None:
        self.statement_id = statement_id
        self.rows: list[tuple[SimOrder, SimSettlement]] = []

    @property
    def statement_time(self) -> int:
        """Unix second of the latest payout in it."""
        return max(s.settled_at for _, s in self.rows)

    def summary(self) -> Json:
        """The statement as ``GET /finance/202309/statements`` lists it (amounts as decimal text)."""
        net = sum(s.net for _, s in self.rows)
        gross = sum(s.gross for _, s in self.rows)
        return {
            "id": self.statement_id,
            "statement_time": self.statement_time,
            "settlement_amount": str(net),
            "revenue_amount": str(gross),
            "fee_amount": str(net - gross),
            "adjustment_amount": "0",
            "currency": "IDR",
            "payment_status": "PAID",
            "payment_id": f"P{self.statement_id}",
        }


def statements_of(state: SimState, shop_id: str) -> list[SimStatement]:
    """A shop's statements, oldest first."""
    by_day: dict[str, SimStatement] = {}
    for order in state.orders(Channel.TIKTOK_SHOP):
        if order.shop_id != shop_id:
            continue
        for payout in order.settlements:
            day = datetime.fromtimestamp(payout.settled_at, UTC).strftime("%Y%m%d")
            by_day.setdefault(day, SimStatement(f"{shop_id}{day}")).rows.append((order, payout))
    return sorted(by_day.values(), key=lambda st: (st.statement_time, st.statement_id))


def add_statement_routes(
    app: FastAPI,
    state: SimState,
    tiktok: tuple[Callable[[Request, str], Awaitable[str]], Callable[[str], Exception], Callable[[Json], Json]],
) -> None:
    """Mount the statements endpoints; ``tiktok`` is (authenticate → shop id, bad request error, success envelope)."""
    auth, bad, ok = tiktok

    def number(request: Request, name: str, default: int | None = None) -> int:
        raw = request.query_params.get(name)
        if raw in (None, "") and default is not None:
            return default
        if raw is None or not raw.isdigit():
            raise bad(f"parameter {name} must be a whole number")
        return int(raw)

    def page(request: Request, items: list[Json], name: str) -> Json:
        size = min(number(request, "page_size", 20), 100)
        token = request.query_params.get("page_token") or "0"
        offset = int(token) if token.isdigit() else 0
        more = offset + size < len(items)
        return ok({name: items[offset : offset + size], "next_page_token": str(offset + size) if more else ""})

    @app.get(f"/tiktok_shop{STATEMENTS}")
    async def tiktok_statements(request: Request) -> Json:
        shop_id = await auth(request, STATEMENTS)
        if request.query_params.get("sort_field") != "statement_time":
            raise bad("sort_field must be statement_time")
        start, end = number(request, "statement_time_ge", 0), number(request, "statement_time_lt", 2**62)
        found = [st.summary() for st in statements_of(state, shop_id) if start <= st.statement_time < end]
        return page(request, found, "statements")

    @app.get("/tiktok_shop/finance/202309/statements/{statement_id}/statement_transactions")
    async def tiktok_statement_rows(statement_id: str, request: Request) -> Json:
        shop_id = await auth(request, ROWS.format(statement_id=statement_id))
        if request.query_params.get("sort_field") != "order_create_time":
            raise bad("sort_field must be order_create_time")
        for statement in statements_of(state, shop_id):
            if statement.statement_id == statement_id:
                rows = [
                    row
                    for order, payout in statement.rows
                    for row in render.tiktok_statement(order)
                    if row["id"] == payout.settlement_id
                ]
                return page(request, rows, "statement_transactions")
        raise bad(f"statement not found: {statement_id!r}")
