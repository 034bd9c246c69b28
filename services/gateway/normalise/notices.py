"""Webhook bodies → :class:`Notice`: which order, which status as of when, and the lines when sent.

Tokopedia's order notification carries products and amounts. Its status and cancellation webhooks, and every
TikTok Shop and Shopee push, are triggers: the normaliser completes them from the order-detail API.

Times: Tokopedia's published ``order_status`` body carries no time at all, so a Tokopedia status or
cancellation without one is stamped with its arrival (``received_at``, the raw delivery's row time) and the
orders service orders it by status rank and arrival. TikTok Shop type 11 (cancellation status change) carries
no ``order_status``: its ``cancel_status`` (``CANCELLATION_REQUEST_PENDING``, ``…_SUCCESS``, ``…_COMPLETE``,
``…_CANCEL``…) is the raw status, which the TikTok Shop status table maps onto cancel-requested, cancelled, or —
for a rejected or withdrawn request — back to awaiting fulfilment (:mod:`services.contracts.channels`).

Parse errors name the field and what is wrong with it, never its value (a refused delivery's reason is stored
and sent; buyer data stays in the raw delivery).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from services.contracts.base import order_key
from services.contracts.marketplace import OrderLine
from services.gateway.values import BadValue, parse_quantity, parse_rupiah, parse_time

# A key of a free-form object (``amt``) is input: it is named in a message only when it looks like a field name.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


TIKTOK_ORDER_STATUS_TYPE: Final = 1
TIKTOK_CANCELLATION_TYPE: Final = 11


class ParseError(BadValue):
    """A body that does not say what its channel's format promises (the message names the field, never a value)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One channel message about one order, in the channel's own status vocabulary."""

    channel: str
    shop_id: str
    order_id: str
    raw_status: str
    update_time: datetime
    lines: tuple[OrderLine, ...] = ()
    gross_amount: int | None = None

    @property
    def order_key(self) -> str:
        """``channel:shop:order``."""
        return order_key(self.channel, self.shop_id, self.order_id)


def _field(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            raise ParseError(f"missing field {path}")
        node = node[part]
    return node


def _ident(doc: Mapping[str, Any], path: str) -> str:
    """An identifier (number or text) as text; ``:`` is refused because it separates order-key parts."""
    value = _field(doc, path)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParseError(f"{path}: expected an id, got {_kind(value)}")
    text = str(value).strip()
    if not text or ":" in text:
        raise ParseError(f"{path}: invalid id (empty or containing ':')")
    return text


def _status(doc: Mapping[str, Any], path: str) -> str:
    value = _field(doc, path)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise ParseError(f"{path}: invalid status ({_kind(value)})")
    return str(value).strip()


def _time(doc: Mapping[str, Any], *paths: str) -> datetime:
    for path in paths:
        try:
            value = _field(doc, path)
        except ParseError:
            continue
        return parse_time(value, path)
    raise ParseError(f"missing field {paths[0]}")


def _kind(value: object) -> str:
    """What a value is, without the value: ``an empty text``, ``a number``, ``a list``..."""
    if isinstance(value, str):
        return "an empty text" if not value.strip() else "a text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return "null" if value is None else type(value).__name__


def _key(key: object) -> str:
    return key if isinstance(key, str) and _KEY.fullmatch(key) else "*"


def load_json(body: str | bytes) -> dict[str, Any]:
    """The body as a JSON object."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"body is not JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(doc, dict):
        raise ParseError("body is not a JSON object")
    return doc


def _time_or_arrival(doc: Mapping[str, Any], received_at: datetime | None, *paths: str) -> datetime:
    """The body's time at the first of ``paths`` present, else the arrival time (when known)."""
    if received_at is None or any(isinstance(doc.get(p), int | float | str) for p in paths):
        return _time(doc, *paths)
    return received_at


def parse_tokopedia(webhook_type: str, doc: Mapping[str, Any], received_at: datetime | None = None) -> Notice:
    """Tokopedia order notification (with products and ``amt``), order status or cancellation.

    The published ``order_status`` body is ``{fs_id, order_status, order_id, shop_id, warehouse_id,
    product_details}``: no time, so ``received_at`` stands in (see the module docstring).
    """
    notice = Notice(
        channel="tokopedia",
        shop_id=_ident(doc, "shop_id"),
        order_id=_ident(doc, "order_id"),
        raw_status=_status(doc, "order_status"),
        update_time=_time_or_arrival(doc, received_at, "update_time", "create_time"),
    )
    if webhook_type != "order_notification":
        return notice
    products = _field(doc, "products")
    if not isinstance(products, list) or not products:
        raise ParseError("products: expected a non-empty list")
    lines = []
    for i, product in enumerate(products):
        if not isinstance(product, Mapping):
            raise ParseError(f"products[{i}]: expected an object")
        lines.append(
            OrderLine(
                channel_product_id=_ident(product, "id"),
                quantity=parse_quantity(_field(product, "quantity"), f"products[{i}].quantity"),
                unit_price=parse_rupiah(_field(product, "price"), f"products[{i}].price"),
            )
        )
    amt = _field(doc, "amt")
    if not isinstance(amt, Mapping):
        raise ParseError("amt: expected an object")
    amounts = {k: parse_rupiah(v, f"amt.{_key(k)}") for k, v in amt.items() if v is not None}
    gross = amounts.get("ttl_product_price")
    if gross is None:
        raise ParseError("missing field amt.ttl_product_price")
    n = notice
    return Notice(n.channel, n.shop_id, n.order_id, n.raw_status, n.update_time, tuple(lines), gross)


def parse_tiktok_shop(doc: Mapping[str, Any]) -> Notice:
    """TikTok Shop type 1 (order status change) or type 11 (cancellation status change): a trigger.

    The body's ``type`` decides, whichever route it came by. Type 1 ``data: {order_id, order_status,
    is_on_hold_order, update_time}``; type 11 ``data: {order_id, cancellations_role, cancel_status, cancel_id,
    create_time}``, whose time is the push's ``timestamp`` (``create_time`` is when the request was made, the
    same for every later state of that request).
    """
    kind = _field(doc, "type")
    if kind == TIKTOK_ORDER_STATUS_TYPE:
        raw_status = _status(doc, "data.order_status")
        update_time = _time(doc, "data.update_time", "timestamp")
    elif kind == TIKTOK_CANCELLATION_TYPE:
        raw_status = _status(doc, "data.cancel_status")
        update_time = _time(doc, "data.update_time", "timestamp", "data.create_time")
    else:
        got = kind if type(kind) is int else _kind(kind)
        raise ParseError(f"type: expected 1 (order status) or 11 (cancellation status), got {got}")
    return Notice(
        channel="tiktok_shop",
        shop_id=_ident(doc, "shop_id"),
        order_id=_ident(doc, "data.order_id"),
        raw_status=raw_status,
        update_time=update_time,
    )


def parse_shopee(doc: Mapping[str, Any]) -> Notice:
    """Shopee push code 3 (order status): a trigger."""
    code = _field(doc, "code")
    if code != 3:
        got = code if type(code) is int else _kind(code)
        raise ParseError(f"code: expected 3 (order status push), got {got}")
    return Notice(
        channel="shopee",
        shop_id=_ident(doc, "shop_id"),
        order_id=_ident(doc, "data.ordersn"),
        raw_status=_status(doc, "data.status"),
        update_time=_time(doc, "data.update_time", "timestamp"),
    )


def parse_delivery(channel: str, webhook_type: str, body: str | bytes, received_at: datetime | None = None) -> Notice:
    """What a verified delivery says; ``received_at`` (its arrival) dates a Tokopedia body without a time.

    Raises:
        ParseError: unparseable body or a field missing or malformed (named in the message).
        BadValue: an amount, quantity or time the gateway refuses (NonIntegralAmount: a fractional amount).
    """
    doc = load_json(body)
    if channel == "tokopedia":
        return parse_tokopedia(webhook_type, doc, received_at)
    if channel == "tiktok_shop":
        return parse_tiktok_shop(doc)
    if channel == "shopee":
        return parse_shopee(doc)
    raise ParseError(f"no webhook parser for channel {_key(channel)}")
