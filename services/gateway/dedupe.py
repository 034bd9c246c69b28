"""Dedupe keys of webhook deliveries, per channel (pure).

- Tokopedia gives none: ``tokopedia:<fs_id>:<order_id>:<type>:<order_status>`` with type ∈ notification,
  status, cancellation.
- TikTok Shop: ``tiktok_shop:<tts_notification_id>`` (a retry carries the same id).
- Shopee gives none: ``shopee:`` + sha256 of (shop_id, code, ordersn, status, update_time).

A body too broken to yield its key is keyed by the sha256 of its bytes, so the same broken delivery is still
stored once (and then dead-lettered by the normaliser with the reason).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from services.contracts.base import order_key

_TOKOPEDIA_TYPES = {
    "order_notification": "notification",
    "order_status": "status",
    "order_cancellation": "cancellation",
}


@dataclass(frozen=True, slots=True)
class DeliveryKeys:
    """The dedupe key of a delivery and, when the body names it, the order key."""

    dedupe_key: str
    order_key: str | None


def _get(doc: Any, path: str) -> str | None:
    node = doc
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | str | float):
        return None
    return str(node)


def _order_key(channel: str, shop: str | None, order: str | None) -> str | None:
    if not shop or not order or ":" in shop or ":" in order:
        return None
    return order_key(channel, shop, order)


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def delivery_keys(channel: str, webhook_type: str, body: bytes) -> DeliveryKeys:
    """The dedupe key and order key of a verified delivery on ``channel``/``webhook_type``."""
    fallback = f"{channel}:{webhook_type}:body:{hashlib.sha256(body).hexdigest()}"
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return DeliveryKeys(fallback, None)
    if not isinstance(doc, dict):
        return DeliveryKeys(fallback, None)
    if channel == "tokopedia":
        fs_id, order, status = _get(doc, "fs_id"), _get(doc, "order_id"), _get(doc, "order_status")
        okey = _order_key(channel, _get(doc, "shop_id"), order)
        if fs_id is None or order is None or status is None:
            return DeliveryKeys(fallback, okey)
        return DeliveryKeys(f"tokopedia:{fs_id}:{order}:{_TOKOPEDIA_TYPES[webhook_type]}:{status}", okey)
    if channel == "tiktok_shop":
        okey = _order_key(channel, _get(doc, "shop_id"), _get(doc, "data.order_id"))
        notification = _get(doc, "tts_notification_id")
        return DeliveryKeys(f"tiktok_shop:{notification}" if notification else fallback, okey)
    if channel == "shopee":
        shop, ordersn = _get(doc, "shop_id"), _get(doc, "data.ordersn")
        parts = [shop, _get(doc, "code"), ordersn, _get(doc, "data.status"), _get(doc, "data.update_time")]
        okey = _order_key(channel, shop, ordersn)
        if any(p is None for p in parts):
            return DeliveryKeys(fallback, okey)
        return DeliveryKeys(f"shopee:{_sha256(*(p or '' for p in parts))}", okey)
    raise ValueError(f"no dedupe rule for channel {channel!r}")
