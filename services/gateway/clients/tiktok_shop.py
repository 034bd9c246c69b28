"""TikTok Shop Partner API (version 202309) client: order detail, statement transactions, order search.

Every request carries ``app_key``, ``timestamp`` (unix seconds), the shop's ``shop_cipher`` and ``sign`` in the
query, the shop's access token in the ``x-tts-access-token`` header, and is signed by the published rule
(:func:`services.gateway.clients.signing.tiktok_sign`): every query parameter but ``sign`` and ``access_token``,
sorted by key, with the path and the raw body. Token and cipher come from the token store (``karya shops
connect tiktok_shop``). Answers are ``{"code": 0, "message": ..., "data": ...}``; a non-zero code is an error.
Prices and amounts are decimal strings, one line item per unit.

**Statement rows.** An order's statement transactions (its daily statement, then adjustment rows of later
statements) are signed: revenue and settlement amounts are negative on a row that takes money back, and fees and
withholding are deductions given as negative text (positive on a row that gives them back). :meth:`payouts`
publishes them as the order's *cumulative* totals, one settlement per row (ordered by ``statement_time``, then
id), all under one marketplace settlement id per order (its first row's id): the ledger posts each row's change
to the totals before it (``services.ledger.settlement_plan.settlement_difference``), so a claw-back row lowers
them and is booked as a signed difference instead of being refused. A cumulative total that would be negative is
refused (:class:`BadValue` naming the field), and so is a row that brings the totals back to an earlier row's
while a row in between differed: the settlement content id would repeat and the change would never be posted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from services.gateway.clients.base import ApiOrder, ApiOrderLine, ApiSettlement, MarketplaceApiError
from services.gateway.clients.http import MarketplaceRefused, ShopClient
from services.gateway.clients.parsing import ceil_unix, get_list, get_mapping, get_str, objects
from services.gateway.clients.refunds import ApiRefund
from services.gateway.clients.returns import parse_tiktok_return, with_netting
from services.gateway.clients.signing import tiktok_sign
from services.gateway.clients.tokens import ShopNotConnected
from services.gateway.values import BadValue, parse_rupiah, parse_time

__all__ = ["ApiStatement", "TikTokShopClient", "tiktok_error"]

ORDERS_PATH = "/order/202309/orders"
SEARCH_PATH = "/order/202309/orders/search"
STATEMENT_PATH = "/finance/202309/orders/{order_id}/statement_transactions"
RETURNS_SEARCH_PATH = "/return_refund/202309/returns/search"
#: The shop's daily statements by ``statement_time`` and one statement's transactions (Finance API 202309).
STATEMENTS_PATH = "/finance/202309/statements"
STATEMENT_ROWS_PATH = "/finance/202309/statements/{statement_id}/statement_transactions"
#: Statement fields → fee type names used in settlement events.
FEE_FIELDS = {
    "platform_commission_amount": "platform_commission",
    "transaction_fee_amount": "transaction_fee",
    "affiliate_commission_amount": "affiliate_commission",
}
_PAGE = 50


@dataclass(frozen=True, slots=True)
class ApiStatement:
    """One of a shop's statements (TikTok Shop issues one a day): its id and ``statement_time``."""

    statement_id: str
    statement_time: datetime


def tiktok_error(body: Mapping[str, object]) -> str | None:
    """TikTok Shop's error inside a body: a ``code`` other than 0 (with its ``message``), else None."""
    code = body.get("code")
    if code == 0:
        return None
    return f"code {code!r}: {body.get('message', '')}"


class TikTokShopClient(ShopClient[str]):
    """Read access to TikTok Shop's seller API (implements ``MarketplaceClient``); built with the app key, the app
    secret and the shop tokens."""

    channel = "tiktok_shop"
    error_in = staticmethod(tiktok_error)

    async def _call(
        self, method: str, path: str, shop_id: str, params: Mapping[str, str | int], body: bytes | None = None
    ) -> Mapping[str, object]:
        access = await self._tokens.access(self.channel, shop_id)
        if not access.shop_cipher:
            raise ShopNotConnected(f"tiktok_shop shop {shop_id} has no shop_cipher: connect it again")
        query: dict[str, str | int] = {
            "app_key": self._app_id,
            "timestamp": int(self._clock()),
            "shop_cipher": access.shop_cipher,
            **params,
        }
        query["sign"] = tiktok_sign(self._app_secret, path, query, body or b"")
        headers = {"x-tts-access-token": access.access_token, "Content-Type": "application/json"}
        answer = await self._api.request(method, path, params=query, headers=headers, content=body)
        return get_mapping(answer, "data", f"tiktok_shop {path}")

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        """The order now; unit line items are folded into lines with a quantity.

        Raises:
            MarketplaceRefused: the answer (a success, HTTP 200) does not hold the order: TikTok Shop leaves ids
                the shop does not have out of ``orders``, so asking again cannot help (as a 404 elsewhere).
        """
        data = await self._call("GET", ORDERS_PATH, shop_id, {"ids": order_id})
        where = f"tiktok_shop {ORDERS_PATH}"
        for raw in objects(get_list(data, "orders", where), where):
            if get_str(raw, "id", where) == order_id:
                return _order(raw, shop_id)
        raise MarketplaceRefused(f"tiktok_shop API {ORDERS_PATH}: order {order_id} is not in the answer (unknown)", 200)

    async def payouts(self, shop_id: str, order_id: str) -> list[ApiSettlement]:
        """One settlement per statement transaction of the order (its daily statement, then any adjustment in a
        later statement), each holding the order's cumulative totals through that row under the order's one
        marketplace settlement id (:func:`cumulative_rows`); ``[]`` while not settled.

        Raises:
            BadValue: a malformed row, a cumulative total below zero, or totals that return to an earlier row's.
        """
        path = STATEMENT_PATH.format(order_id=order_id)
        data = await self._call("GET", path, shop_id, {})
        where = f"tiktok_shop statement of {order_id}"
        rows = [
            _statement_row(row, f"{where}[{index}]", shop_id, order_id)
            for index, row in enumerate(objects(get_list(data, "statement_transactions", where), where))
        ]
        return cumulative_rows(rows, where)

    async def statement_rows_bytes(self, shop_id: str, order_id: str) -> bytes:
        """The order's statement transactions as the API answered them (its ``statement_transactions``, JSON), for
        a dead letter when :meth:`payouts` refuses them."""
        path = STATEMENT_PATH.format(order_id=order_id)
        data = await self._call("GET", path, shop_id, {})
        rows = get_list(data, "statement_transactions", f"tiktok_shop statement of {order_id}")
        return json.dumps(rows, separators=(",", ":"), default=str).encode()

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        """The order's totals through its latest statement transaction (None while not settled); every row's
        totals are in :meth:`payouts`, which is what callers publish (``clients.base.settlements_of``)."""
        rows = await self.payouts(shop_id, order_id)
        return rows[-1] if rows else None

    async def refunds(self, shop_id: str, order_id: str) -> list[ApiRefund]:
        """Refunds of one order: returns search by ``order_ids``, page by page, netted when the statement was
        made at or after the refund (:mod:`services.gateway.clients.returns`)."""
        body = json.dumps({"order_ids": [order_id]}, separators=(",", ":")).encode()
        where = f"tiktok_shop {RETURNS_SEARCH_PATH}"
        refunds: list[ApiRefund] = []
        async for data in self._pages("POST", RETURNS_SEARCH_PATH, shop_id, {}, body):
            for raw in objects(get_list(data, "return_orders", where), where):
                refund = parse_tiktok_return(raw, shop_id)
                if refund is not None and refund.order_id == order_id:
                    refunds.append(refund)
        return with_netting(refunds, await self.settlement(shop_id, order_id)) if refunds else []

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        """Orders with ``update_time`` in [start, end), via the order search API, page by page."""
        body = json.dumps(
            {"update_time_ge": ceil_unix(start), "update_time_lt": ceil_unix(end)}, separators=(",", ":")
        ).encode()
        where = f"tiktok_shop {SEARCH_PATH}"
        orders: list[ApiOrder] = []
        async for data in self._pages("POST", SEARCH_PATH, shop_id, {}, body):
            orders.extend(_order(raw, shop_id) for raw in objects(get_list(data, "orders", where), where))
        return orders

    async def statements_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiStatement]:
        """The shop's statements with ``statement_time`` in [start, end), oldest first, page by page."""
        where = f"tiktok_shop {STATEMENTS_PATH}"
        params: dict[str, str | int] = {
            "statement_time_ge": ceil_unix(start),
            "statement_time_lt": ceil_unix(end),
            "sort_field": "statement_time",
            "sort_order": "ASC",
        }
        statements: list[ApiStatement] = []
        async for data in self._pages("GET", STATEMENTS_PATH, shop_id, params):
            for index, raw in enumerate(objects(get_list(data, "statements", where), where)):
                at = f"{where}[{index}]"
                time = parse_time(raw.get("statement_time"), f"{at}.statement_time")
                statements.append(ApiStatement(get_str(raw, "id", at), time))
        return sorted(statements, key=lambda st: (st.statement_time, st.statement_id))

    async def statement_orders(self, shop_id: str, statement_id: str) -> list[str]:
        """The ids of the orders one statement's transactions pay or adjust (each once, in the answer's order);
        rows without an order (a shop-level fee) are skipped."""
        path = STATEMENT_ROWS_PATH.format(statement_id=statement_id)
        where = f"tiktok_shop statement {statement_id}"
        orders: dict[str, None] = {}
        async for data in self._pages("GET", path, shop_id, {"sort_field": "order_create_time"}):
            for raw in objects(get_list(data, "statement_transactions", where), where):
                order = raw.get("order_id")
                if isinstance(order, str) and order:
                    orders[order] = None
        return list(orders)

    async def _pages(
        self, method: str, path: str, shop_id: str, params: Mapping[str, str | int], body: bytes | None = None
    ) -> AsyncIterator[Mapping[str, object]]:
        """Each page's ``data`` of a listing, following ``next_page_token`` until it is empty."""
        token = ""
        while True:
            query: dict[str, str | int] = {"page_size": _PAGE, **params}
            if token:
                query["page_token"] = token
            data = await self._call(method, path, shop_id, query, body)
            yield data
            next_token = data.get("next_page_token")
            if not next_token:
                return
            if not isinstance(next_token, str) or next_token == token:
                raise MarketplaceApiError(f"tiktok_shop {path}: unusable next_page_token {next_token!r}")
            token = next_token


def _order(raw: Mapping[str, object], shop_id: str) -> ApiOrder:
    order_id = get_str(raw, "id", "tiktok_shop order")
    where = f"tiktok_shop order {order_id}"
    counts: dict[tuple[str, str | None, int], int] = {}
    for index, item in enumerate(objects(get_list(raw, "line_items", where), f"{where}.line_items")):
        at = f"{where}.line_items[{index}]"
        sku = item.get("sku_id")
        key = (
            get_str(item, "product_id", at),
            get_str(item, "sku_id", at) if sku not in (None, "") else None,
            parse_rupiah(item.get("sale_price"), f"{at}.sale_price"),
        )
        counts[key] = counts.get(key, 0) + 1
    lines = tuple(
        ApiOrderLine(channel_product_id=product, channel_sku_id=sku, quantity=quantity, unit_price=price)
        for (product, sku, price), quantity in counts.items()
    )
    payment = get_mapping(raw, "payment", where)
    return ApiOrder(
        channel="tiktok_shop",
        shop_id=shop_id,
        order_id=order_id,
        raw_status=get_str(raw, "status", where),
        update_time=parse_time(raw.get("update_time"), f"{where}.update_time"),
        lines=lines,
        gross_amount=parse_rupiah(payment.get("sub_total"), f"{where}.payment.sub_total"),
    )


def _statement_row(row: Mapping[str, object], at: str, shop_id: str, order_id: str) -> ApiSettlement:
    """One statement transaction, signed, under its own id: revenue and net as sent (negative on a claw-back row),
    fees and withholding as deductions (sent negative; a positive value gives a deduction back)."""
    fees: dict[str, int] = {}
    for field, fee_type in FEE_FIELDS.items():
        raw = row.get(field)
        amount = 0 if raw is None else -parse_rupiah(raw, f"{at}.{field}", allow_negative=True)
        if amount:
            fees[fee_type] = amount
    withheld = row.get("withholding_tax_amount", "0")
    return ApiSettlement(
        channel="tiktok_shop",
        shop_id=shop_id,
        order_id=order_id,
        settlement_id=get_str(row, "id", at),
        gross_amount=parse_rupiah(row.get("revenue_amount"), f"{at}.revenue_amount", allow_negative=True),
        fees=fees,
        pph22_withheld=-parse_rupiah(withheld, f"{at}.withholding_tax_amount", allow_negative=True),
        net_payout=parse_rupiah(row.get("settlement_amount"), f"{at}.settlement_amount", allow_negative=True),
        settled_at=parse_time(row.get("statement_time"), f"{at}.statement_time"),
    )


def _totals(s: ApiSettlement) -> tuple[int, tuple[tuple[str, int], ...], int, int]:
    return s.gross_amount, tuple(sorted((t, a) for t, a in s.fees.items() if a)), s.pph22_withheld, s.net_payout


def cumulative_rows(rows: list[ApiSettlement], where: str) -> list[ApiSettlement]:
    """An order's signed statement rows (:func:`_statement_row`) as its cumulative totals: ordered by statement
    time, then id, the n-th settlement sums the first n rows, each under the first row's id (the order's one
    marketplace settlement id, so the ledger posts each row as the difference to the totals before it).

    Raises:
        BadValue: a cumulative total below zero (naming the field and row), or a row whose totals equal an
            earlier row's while one in between differed (the same content would not be published again, and the
            change it brings back would be lost: refused so that it is seen).
    """
    ordered = sorted(rows, key=lambda r: (r.settled_at or datetime.min.replace(tzinfo=UTC), r.settlement_id))
    published: list[ApiSettlement] = []
    gross = pph22 = net = 0
    fees: dict[str, int] = {}
    for row in ordered:
        at = f"{where} row {row.settlement_id}"
        gross, pph22, net = gross + row.gross_amount, pph22 + row.pph22_withheld, net + row.net_payout
        for fee_type, amount in row.fees.items():
            fees[fee_type] = fees.get(fee_type, 0) + amount
        sums = {"revenue_amount": gross, "withholding_tax_amount": pph22, "settlement_amount": net}
        sums.update({field: fees.get(fee_type, 0) for field, fee_type in FEE_FIELDS.items()})
        negative = [field for field, total in sums.items() if total < 0]
        if negative:
            raise BadValue(f"{at}: cumulative {', '.join(negative)} below zero")
        total = ApiSettlement(
            channel=row.channel,
            shop_id=row.shop_id,
            order_id=row.order_id,
            settlement_id=ordered[0].settlement_id,
            gross_amount=gross,
            fees={t: a for t, a in sorted(fees.items()) if a},
            pph22_withheld=pph22,
            net_payout=net,
            settled_at=row.settled_at,
        )
        earlier = [_totals(p) for p in published]
        if earlier and _totals(total) != earlier[-1] and _totals(total) in earlier:
            raise BadValue(f"{at}: cumulative totals return to an earlier row's (its change would not be posted)")
        published.append(total)
    return published
