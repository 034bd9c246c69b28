"""Shopee Open Platform v2 client: order detail, escrow detail and the order list (backstop polling).

Shop-level calls carry ``partner_id``, ``timestamp`` (unix seconds), ``access_token``, ``shop_id`` and
``sign = hex(HMAC-SHA256(partner_key, partner_id + path + timestamp + access_token + shop_id))`` in the query
(:func:`services.gateway.clients.signing.shopee_sign`), where ``path`` is the API path (``/api/v2/...``)
without the base URL's own prefix. The access token is the shop's, from the token store (``karya shops
connect shopee``). Errors arrive as ``{"error": "...", "message": ...}``, also inside an HTTP 200: an error code
of the "not found" class (:func:`shopee_refused`) refuses the request (an unknown order: retrying cannot help),
any other is counted unavailable and retried.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from services.gateway.clients.base import ApiOrder, ApiOrderLine, ApiSettlement, MarketplaceApiError
from services.gateway.clients.http import MarketplaceRefused, ShopClient
from services.gateway.clients.parsing import ceil_unix, get_list, get_mapping, get_str, objects
from services.gateway.clients.refunds import ApiRefund
from services.gateway.clients.returns import parse_shopee_return, with_netting
from services.gateway.clients.signing import shopee_sign
from services.gateway.values import parse_count, parse_fee, parse_quantity, parse_rupiah, parse_time

__all__ = ["ShopeeClient", "shop_number", "shopee_error", "shopee_refused"]

ORDER_DETAIL_PATH = "/api/v2/order/get_order_detail"
ESCROW_DETAIL_PATH = "/api/v2/payment/get_escrow_detail"
ORDER_LIST_PATH = "/api/v2/order/get_order_list"
RETURN_LIST_PATH = "/api/v2/returns/get_return_list"
RETURN_DETAIL_PATH = "/api/v2/returns/get_return_detail"
#: How far back ``refunds()`` looks for an order's returns (by return update time; the list's window limit).
RETURNS_LOOKBACK = timedelta(days=15)
FEE_FIELDS = ("commission_fee", "service_fee", "seller_transaction_fee", "campaign_fee")
_DETAIL_BATCH = 50  # get_order_detail takes at most 50 order_sn per call
_LIST_PAGE = 100
_MAX_WINDOW = timedelta(days=15)  # get_order_list refuses longer time ranges


def shopee_error(body: Mapping[str, object]) -> str | None:
    """Shopee's error inside a body: a non-empty ``error`` code (with its ``message``), else None."""
    error = body.get("error")
    if isinstance(error, str) and error:
        return f"{error}: {body.get('message', '')}".rstrip(": ")
    return None


def shopee_refused(body: Mapping[str, object]) -> bool:
    """Whether Shopee's error code says the thing asked for does not exist (``error_not_found``,
    ``error_order_not_found``, ...: any code ending in ``not_found``; the exact codes are not published in one
    place, *uncertain*). Other codes (``error_server``, ``error_busy``, ``error_auth``...) may pass."""
    error = body.get("error")
    return isinstance(error, str) and error.lower().endswith("not_found")


class ShopeeClient(ShopClient[int]):
    """Read access to Shopee's seller API (implements ``MarketplaceClient``); built with the partner id, the
    partner key and the shop tokens."""

    channel = "shopee"
    error_in = staticmethod(shopee_error)
    refused_in = staticmethod(shopee_refused)

    async def _get(self, path: str, shop_id: str, params: Mapping[str, str | int]) -> Mapping[str, object]:
        shop = shop_number(shop_id)
        token = (await self._tokens.access(self.channel, shop_id)).access_token
        timestamp = int(self._clock())
        sign = shopee_sign(self._app_secret, self._app_id, path, timestamp, access_token=token, shop_id=shop)
        signed: dict[str, str | int] = {
            "partner_id": self._app_id,
            "timestamp": timestamp,
            "access_token": token,
            "shop_id": shop,
            "sign": sign,
            **params,
        }
        body = await self._api.request("GET", path, params=signed)
        return get_mapping(body, "response", f"shopee {path}")

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        """The order as Shopee sees it now (lines from ``item_list``; gross = Σ quantity × unit price).

        Raises:
            MarketplaceRefused: Shopee does not know the order (a ``…not_found`` error, or a success that leaves
                it out): asking again cannot help.
        """
        for order in await self._details(shop_id, [order_id]):
            if order.order_id == order_id:
                return order
        where = f"shopee API {ORDER_DETAIL_PATH}"
        raise MarketplaceRefused(f"{where}: order {order_id} is not in the answer (unknown)", 200)

    async def _details(self, shop_id: str, order_sns: Sequence[str]) -> list[ApiOrder]:
        response = await self._get(ORDER_DETAIL_PATH, shop_id, {"order_sn_list": ",".join(order_sns)})
        where = f"shopee {ORDER_DETAIL_PATH}"
        return [_order(raw, shop_id) for raw in objects(get_list(response, "order_list", where), where)]

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        """Escrow detail of one order; None while ``escrow_release_time`` is 0 (not released)."""
        response = await self._get(ESCROW_DETAIL_PATH, shop_id, {"order_sn": order_id})
        where = f"shopee escrow {order_id}"
        income = get_mapping(response, "order_income", where)
        release = parse_count(income.get("escrow_release_time", 0), f"{where}.escrow_release_time")
        if release == 0:
            return None
        fees: dict[str, int] = {}
        for name in FEE_FIELDS:
            raw = income.get(name)
            amount = 0 if raw is None else parse_fee(raw, f"{where}.{name}")
            if amount:
                fees[name] = amount
        return ApiSettlement(
            channel=self.channel,
            shop_id=shop_id,
            order_id=order_id,
            settlement_id=order_id,  # one escrow per order
            gross_amount=parse_rupiah(income.get("order_original_price"), f"{where}.order_original_price"),
            fees=fees,
            pph22_withheld=parse_fee(income.get("withholding_tax", 0), f"{where}.withholding_tax"),
            net_payout=parse_rupiah(income.get("escrow_amount"), f"{where}.escrow_amount"),
            settled_at=parse_time(release, f"{where}.escrow_release_time"),
        )

    async def refunds(self, shop_id: str, order_id: str) -> list[ApiRefund]:
        """Refunds of one order: its returns in ``get_return_list`` (updated within the last
        :data:`RETURNS_LOOKBACK`; the list cannot be filtered by order), each read with ``get_return_detail``,
        netted when the escrow was released at or after the refund (:mod:`services.gateway.clients.returns`)."""
        # Rounded up: a return updated earlier in this second is in the window (rounded down it was not, and the
        # refund pushed with it was never read again).
        end = datetime.fromtimestamp(math.ceil(self._clock()), UTC)
        where = f"shopee {RETURN_LIST_PATH}"
        return_sns: list[str] = []
        page = 0
        while True:
            params: dict[str, str | int] = {
                "page_no": page,
                "page_size": _LIST_PAGE,
                "update_time_from": ceil_unix(end - RETURNS_LOOKBACK),
                "update_time_to": ceil_unix(end),
            }
            response = await self._get(RETURN_LIST_PATH, shop_id, params)
            for raw in objects(get_list(response, "return", where), where):
                if get_str(raw, "order_sn", where) == order_id:
                    return_sns.append(get_str(raw, "return_sn", where))
            if response.get("more") is not True:
                break
            page += 1
        refunds = []
        for return_sn in dict.fromkeys(return_sns):
            detail = await self._get(RETURN_DETAIL_PATH, shop_id, {"return_sn": return_sn})
            refund = parse_shopee_return(detail, shop_id)
            if refund is not None:
                refunds.append(refund)
        return with_netting(refunds, await self.settlement(shop_id, order_id)) if refunds else []

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        """Orders whose ``update_time`` is in [start, end): order list by update time, then order detail.

        Windows longer than Shopee's 15-day limit are split.
        """
        order_sns: list[str] = []
        window_start = start
        while window_start < end:
            window_end = min(end, window_start + _MAX_WINDOW)
            order_sns.extend(await self._list_window(shop_id, window_start, window_end))
            window_start = window_end
        unique = list(dict.fromkeys(order_sns))
        orders: list[ApiOrder] = []
        for first in range(0, len(unique), _DETAIL_BATCH):
            orders.extend(await self._details(shop_id, unique[first : first + _DETAIL_BATCH]))
        return orders

    async def _list_window(self, shop_id: str, start: datetime, end: datetime) -> list[str]:
        where = f"shopee {ORDER_LIST_PATH}"
        cursor = ""
        found: list[str] = []
        while True:
            params: dict[str, str | int] = {
                "time_range_field": "update_time",
                "time_from": ceil_unix(start),
                "time_to": ceil_unix(end),
                "page_size": _LIST_PAGE,
                "cursor": cursor,
            }
            response = await self._get(ORDER_LIST_PATH, shop_id, params)
            found.extend(get_str(o, "order_sn", where) for o in objects(get_list(response, "order_list", where), where))
            next_cursor = response.get("next_cursor")
            if response.get("more") is not True:
                return found
            if not isinstance(next_cursor, str) or not next_cursor or next_cursor == cursor:
                raise MarketplaceApiError(f"{where}: 'more' is set but next_cursor {next_cursor!r} is unusable")
            cursor = next_cursor


def shop_number(shop_id: str) -> int:
    """A Shopee shop id as the number the API wants (else :class:`MarketplaceApiError`)."""
    if not shop_id.isascii() or not shop_id.isdigit():
        raise MarketplaceApiError(f"shopee: shop_id must be a number, got {shop_id!r}")
    return int(shop_id)


def _order(raw: Mapping[str, object], shop_id: str) -> ApiOrder:
    order_sn = get_str(raw, "order_sn", "shopee order")
    where = f"shopee order {order_sn}"
    lines: list[ApiOrderLine] = []
    for index, item in enumerate(objects(get_list(raw, "item_list", where), f"{where}.item_list")):
        at = f"{where}.item_list[{index}]"
        model = get_str(item, "model_id", at)
        lines.append(
            ApiOrderLine(
                channel_product_id=get_str(item, "item_id", at),
                channel_sku_id=None if model == "0" else model,
                quantity=parse_quantity(item.get("model_quantity_purchased"), f"{at}.model_quantity_purchased"),
                unit_price=parse_rupiah(item.get("model_discounted_price"), f"{at}.model_discounted_price"),
            )
        )
    return ApiOrder(
        channel="shopee",
        shop_id=shop_id,
        order_id=order_sn,
        raw_status=get_str(raw, "order_status", where),
        update_time=parse_time(raw.get("update_time"), f"{where}.update_time"),
        lines=tuple(lines),
        gross_amount=sum(line.quantity * line.unit_price for line in lines),
    )
