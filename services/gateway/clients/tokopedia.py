"""Tokopedia legacy fulfilment-service (fs) API client: single order, order income and the order list.

Requests carry ``Authorization: Bearer <token>``; paths include the app's ``fs_id``. Answers are
``{"header": {...}, "data": ...}``; an error sets ``header.error_code`` (and ``data`` is null). Order
statuses are integers, reported as decimal strings (``"220"``); amounts may be JSON floats like ``25000.0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import httpx

from services.gateway.clients.base import ApiOrder, ApiOrderLine, ApiSettlement, MarketplaceApiError
from services.gateway.clients.http import ChannelClient
from services.gateway.clients.parsing import ceil_unix, get_list, get_mapping, get_str, objects
from services.gateway.clients.refunds import ApiRefund, parse_refunds
from services.gateway.values import parse_fee, parse_quantity, parse_rupiah, parse_time

__all__ = ["TokopediaClient", "tokopedia_error"]

ORDER_PATH = "/v2/fs/{fs_id}/order"
INCOME_PATH = "/v1/fs/{fs_id}/order/{order_id}/income"
ORDER_LIST_PATH = "/v2/order/list"
_PAGE = 100


def tokopedia_error(body: Mapping[str, object]) -> str | None:
    """Tokopedia's error inside a body: ``header.error_code`` when set (with the reason), else None."""
    header = body.get("header")
    if isinstance(header, Mapping):
        code = header.get("error_code")
        if code not in (None, "", 0):
            return f"{code}: {header.get('reason') or header.get('messages') or ''}"
    return None


class TokopediaClient(ChannelClient):
    """Read access to Tokopedia's fs API (implements ``MarketplaceClient``).

    Tokopedia's fs API authorises the app, not a shop: one client-credentials bearer token
    (``KARYA_TOKOPEDIA_API_TOKEN``) for every shop the app serves.
    """

    channel = "tokopedia"

    def __init__(
        self,
        base_url: str,
        fs_id: int,
        token: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, tokopedia_error, timeout_s=timeout_s, transport=transport)
        self._fs_id = fs_id
        self._headers = {"Authorization": f"Bearer {token}"}

    async def _get(self, path: str, params: Mapping[str, str | int]) -> object:
        body = await self._api.request("GET", path, params=params, headers=self._headers)
        if body.get("data") is None:
            raise MarketplaceApiError(f"tokopedia API GET {path}: answer has no data")
        return body["data"]

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        """The order now: ``products`` become lines, ``amt.ttl_product_price`` the gross."""
        path = ORDER_PATH.format(fs_id=self._fs_id)
        data = await self._get(path, {"order_id": order_id, "shop_id": shop_id})
        if not isinstance(data, Mapping):
            raise MarketplaceApiError(f"tokopedia API GET {path}: data is not an object")
        order = _order(data, shop_id)
        if order.order_id != order_id:
            raise MarketplaceApiError(f"tokopedia API GET {path}: asked for {order_id}, got {order.order_id}")
        return order

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        """Order income; None while ``settled_at`` is null."""
        path = INCOME_PATH.format(fs_id=self._fs_id, order_id=order_id)
        data = await self._get(path, {"shop_id": shop_id})
        if not isinstance(data, Mapping):
            raise MarketplaceApiError(f"tokopedia API GET {path}: data is not an object")
        where = f"tokopedia income of {order_id}"
        if data.get("settled_at") is None:
            return None
        fees = {
            name: amount
            for name, raw in get_mapping(data, "fees", where).items()
            if (amount := parse_fee(raw, f"{where}.fees.{name}"))
        }
        return ApiSettlement(
            channel=self.channel,
            shop_id=shop_id,
            order_id=order_id,
            settlement_id=order_id,  # one income record per order
            gross_amount=parse_rupiah(data.get("gross_amount"), f"{where}.gross_amount"),
            fees=fees,
            pph22_withheld=parse_fee(data.get("pph22", 0), f"{where}.pph22"),
            net_payout=parse_rupiah(data.get("net_income"), f"{where}.net_income"),
            settled_at=parse_time(data.get("settled_at"), f"{where}.settled_at"),
        )

    async def refunds(self, shop_id: str, order_id: str) -> list[ApiRefund]:
        """Refunds of one order, from the income answer's ``refunds`` list (see ``refunds.py``)."""
        path = INCOME_PATH.format(fs_id=self._fs_id, order_id=order_id)
        data = await self._get(path, {"shop_id": shop_id})
        if not isinstance(data, Mapping):
            raise MarketplaceApiError(f"tokopedia API GET {path}: data is not an object")
        return parse_refunds(data, self.channel, shop_id, order_id)

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        """Orders with ``update_time`` in [start, end) from the order list, page by page (pages from 1)."""
        orders: list[ApiOrder] = []
        page = 1
        while True:
            params: dict[str, str | int] = {
                "fs_id": self._fs_id,
                "shop_id": shop_id,
                "from_date": ceil_unix(start),
                "to_date": ceil_unix(end),
                "page": page,
                "per_page": _PAGE,
            }
            data = await self._get(ORDER_LIST_PATH, params)
            if not isinstance(data, list):
                raise MarketplaceApiError(f"tokopedia API GET {ORDER_LIST_PATH}: data is not a list")
            orders.extend(_order(raw, shop_id) for raw in objects(data, f"tokopedia {ORDER_LIST_PATH}"))
            if len(data) < _PAGE:
                return orders
            page += 1


def _order(raw: Mapping[str, object], shop_id: str) -> ApiOrder:
    order_id = get_str(raw, "order_id", "tokopedia order")
    where = f"tokopedia order {order_id}"
    lines: list[ApiOrderLine] = []
    for index, product in enumerate(objects(get_list(raw, "products", where), f"{where}.products")):
        at = f"{where}.products[{index}]"
        lines.append(
            ApiOrderLine(
                channel_product_id=get_str(product, "id", at),
                channel_sku_id=None,
                quantity=parse_quantity(product.get("quantity"), f"{at}.quantity"),
                unit_price=parse_rupiah(product.get("price"), f"{at}.price"),
            )
        )
    amt = get_mapping(raw, "amt", where)
    updated = raw.get("update_time")
    if updated is None:
        updated = raw.get("create_time")
    return ApiOrder(
        channel="tokopedia",
        shop_id=shop_id,
        order_id=order_id,
        raw_status=get_str(raw, "order_status", where),
        update_time=parse_time(updated, f"{where}.update_time"),
        lines=tuple(lines),
        gross_amount=parse_rupiah(amt.get("ttl_product_price"), f"{where}.amt.ttl_product_price"),
    )
