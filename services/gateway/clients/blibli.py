"""blibli.com seller API client: the order list by date window (Blibli sends no webhooks) and order detail.

Requests are authenticated as Blibli publishes it (seller-api.blibli.com; Blibli's PHP client
``bliblidotcom/seller-api-client-php``): ``Authorization: Basic base64(api_client_id:api_client_key)`` (the
platform's API client), ``Api-Seller-Key`` (the seller's key from Seller Center), and — because Karya always sets
a signature key — ``Signature`` (Base64 HMAC-SHA256, :func:`services.gateway.clients.signing.blibli_signature`)
with ``Signature-Time`` (unix ms). The query carries ``requestId`` (unique), ``storeId=10001``, ``channelId``,
``storeCode``, ``businessPartnerCode`` and, when configured, ``username``. The list has one row per order item
(``orderNo``, ``orderItemNo``, ``merchantSku``, ``productItemCode``, ``qty``, ``itemPrice``, ``orderStatus``,
``orderStatusUpdatedDate`` in ms, ``settlement``); rows are grouped into orders here. Answers are
``{"success": true, "content": ..., "pageMetaData": ...}``; ``success: false`` is an error.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from services.gateway.clients.base import ApiOrder, ApiOrderLine, ApiSettlement, MarketplaceApiError
from services.gateway.clients.http import ChannelClient
from services.gateway.clients.parsing import ceil_unix_ms, get_list, get_mapping, get_str, objects
from services.gateway.clients.signing import blibli_signature
from services.gateway.values import parse_count, parse_fee, parse_quantity, parse_rupiah, parse_time

__all__ = ["BlibliClient", "BlibliCredentials", "blibli_error"]

ORDER_LIST_PATH = "/proxy/mta/api/businesspartner/v1/order/orderList"
ORDER_DETAIL_PATH = "/proxy/mta/api/businesspartner/v1/order/orderDetail"
STORE_ID = 10001  # "the fixed value for Store ID managed by Blibli"
_PAGE = 100

Row = Mapping[str, object]


@dataclass(frozen=True, slots=True, repr=False)
class BlibliCredentials:
    """The platform's API client (Basic auth), the seller's key and signature key, and the query's identity."""

    client_id: str
    client_key: str
    seller_key: str
    signature_key: str
    channel_id: str = "karya"
    username: str | None = None

    def __repr__(self) -> str:  # never print a secret
        return f"BlibliCredentials(client_id={self.client_id!r}, channel_id={self.channel_id!r}, ...)"


def blibli_error(body: Mapping[str, object]) -> str | None:
    """Blibli's error inside a body: ``success`` is not true (with ``errorCode``/``errorMessage``), else None."""
    if body.get("success") is True:
        return None
    return f"{body.get('errorCode') or 'error'}: {body.get('errorMessage') or 'success is not true'}"


class BlibliClient(ChannelClient):
    """Read access to Blibli's seller API (implements ``MarketplaceClient``)."""

    channel = "blibli"

    def __init__(
        self,
        base_url: str,
        credentials: BlibliCredentials,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(base_url, blibli_error, timeout_s=timeout_s, transport=transport, clock=clock)
        self._credentials = credentials
        basic = base64.b64encode(f"{credentials.client_id}:{credentials.client_key}".encode()).decode()
        self._authorization = f"Basic {basic}"

    async def _get(self, path: str, store: str, params: Mapping[str, str | int]) -> Mapping[str, object]:
        creds = self._credentials
        millis = int(self._clock() * 1000)
        headers = {
            "Authorization": self._authorization,
            "Api-Seller-Key": creds.seller_key,
            "Signature": blibli_signature(creds.signature_key, "GET", b"", "", millis, path),
            "Signature-Time": str(millis),
        }
        query: dict[str, str | int] = {
            "requestId": f"{creds.channel_id}-{uuid.uuid4()}",
            "storeId": STORE_ID,
            "channelId": creds.channel_id,
            "storeCode": store,
            "businessPartnerCode": store,
            **({"username": creds.username} if creds.username else {}),
            **params,
        }
        return await self._api.request("GET", path, params=query, headers=headers)

    async def _rows(self, path: str, params: Mapping[str, str | int]) -> tuple[list[Row], Mapping[str, object]]:
        body = await self._get(path, str(params["storeCode"]), params)
        where = f"blibli {path}"
        return objects(get_list(body, "content", where), where), body

    async def order_detail(self, shop_id: str, order_id: str) -> ApiOrder:
        """All items of one order (``orderDetail`` by ``orderNo``), folded into one order."""
        rows, _ = await self._rows(ORDER_DETAIL_PATH, {"storeCode": shop_id, "orderNo": order_id})
        orders = _group(rows, shop_id)
        if order_id not in orders:
            raise MarketplaceApiError(f"blibli API GET {ORDER_DETAIL_PATH}: order {order_id} not found")
        return _order(orders[order_id], shop_id)

    async def settlement(self, shop_id: str, order_id: str) -> ApiSettlement | None:
        """Sum of the settled items of one order; None while no item carries a settlement."""
        rows, _ = await self._rows(ORDER_DETAIL_PATH, {"storeCode": shop_id, "orderNo": order_id})
        items = _group(rows, shop_id).get(order_id, [])
        settled = [(row, row["settlement"]) for row in items if row.get("settlement") is not None]
        if not settled:
            return None
        gross = net = tax = 0
        fees: dict[str, int] = {}
        settled_at: datetime | None = None
        for row, raw in settled:
            at = f"blibli item {row.get('orderItemNo')}.settlement"
            if not isinstance(raw, Mapping):
                raise MarketplaceApiError(f"{at}: expected an object")
            gross += parse_rupiah(raw.get("gross"), f"{at}.gross")
            net += parse_rupiah(raw.get("net"), f"{at}.net")
            tax += parse_fee(raw.get("pph22", 0), f"{at}.pph22")
            for name, value in get_mapping(raw, "fees", at).items():
                if amount := parse_fee(value, f"{at}.fees.{name}"):
                    fees[name] = fees.get(name, 0) + amount
            moment = parse_time(raw.get("settledAt"), f"{at}.settledAt")
            settled_at = moment if settled_at is None else max(settled_at, moment)
        return ApiSettlement(
            channel=self.channel,
            shop_id=shop_id,
            order_id=order_id,
            settlement_id=order_id,
            gross_amount=gross,
            fees=fees,
            pph22_withheld=tax,
            net_payout=net,
            settled_at=settled_at,
        )

    async def orders_updated_between(self, shop_id: str, start: datetime, end: datetime) -> list[ApiOrder]:
        """Orders with an item whose ``orderStatusUpdatedDate`` is in [start, end), pages from 0."""
        rows: list[Row] = []
        page = 0
        while True:
            params: dict[str, str | int] = {
                "storeCode": shop_id,
                "startDate": ceil_unix_ms(start),
                "endDate": ceil_unix_ms(end),
                "page": page,
                "size": _PAGE,
            }
            content, body = await self._rows(ORDER_LIST_PATH, params)
            rows.extend(content)
            meta = get_mapping(body, "pageMetaData", f"blibli {ORDER_LIST_PATH}")
            total = parse_count(meta.get("totalRecords"), "blibli pageMetaData.totalRecords")
            if not content or (page + 1) * _PAGE >= total:
                break
            page += 1
        return [_order(items, shop_id) for items in _group(rows, shop_id).values()]


def _group(rows: Sequence[Row], shop_id: str) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(get_str(row, "orderNo", f"blibli store {shop_id} row"), []).append(row)
    return grouped


def _order(rows: Sequence[Row], shop_id: str) -> ApiOrder:
    """One order from its item rows; status and update time are those of the most recently updated item."""
    order_no = get_str(rows[0], "orderNo", "blibli row")
    where = f"blibli order {order_no}"
    lines: list[ApiOrderLine] = []
    latest: tuple[datetime, str] | None = None
    for row in rows:
        at = f"{where} item {row.get('orderItemNo')}"
        lines.append(
            ApiOrderLine(
                channel_product_id=get_str(row, "productItemCode", at),
                channel_sku_id=get_str(row, "merchantSku", at),
                quantity=parse_quantity(row.get("qty"), f"{at}.qty"),
                unit_price=parse_rupiah(row.get("itemPrice"), f"{at}.itemPrice"),
            )
        )
        updated = parse_time(row.get("orderStatusUpdatedDate"), f"{at}.orderStatusUpdatedDate")
        status = get_str(row, "orderStatus", at)
        if latest is None or updated > latest[0]:
            latest = (updated, status)
    assert latest is not None  # rows is never empty: built by _group
    return ApiOrder(
        channel="blibli",
        shop_id=shop_id,
        order_id=order_no,
        raw_status=latest[1],
        update_time=latest[0],
        lines=tuple(lines),
        gross_amount=sum(line.quantity * line.unit_price for line in lines),
    )
