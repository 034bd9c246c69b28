"""The ``order_status_changed`` payload as the orders handler reads it: plain tuples, pydantic semantics.

:func:`parse_status_change` gives exactly what ``OrderStatusChanged.model_validate(data)`` would give (as a
:class:`StatusChange`), and raises the same ``ValidationError`` for data the model rejects. The common shape —
what the gateway and the load generator publish, i.e. ``model_dump(mode="json")`` of the model — is checked
field by field here without building pydantic models; anything else (missing or extra fields, other types, other
datetime spellings) goes through the model itself, so the model stays the only definition of what is valid.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, NamedTuple

from services.contracts.channels import Channel
from services.contracts.marketplace import OrderStatusChanged

__all__ = ["LineIn", "StatusChange", "parse_status_change", "status_change_of"]


class LineIn(NamedTuple):
    """One order line as the marketplace lists it."""

    channel_product_id: str
    channel_sku_id: str | None
    quantity: int
    unit_price: int


class StatusChange(NamedTuple):
    """The fields of :class:`OrderStatusChanged` (same names, same values)."""

    order_key: str
    channel: Channel
    shop_id: str
    order_id: str
    raw_status: str
    update_time: datetime
    lines: tuple[LineIn, ...]
    gross_amount: int | None
    historical: bool


_CHANNELS: Final = {c.value: c for c in Channel}
_ORDER_KEY: Final = re.compile(r"[a-z_]+:[^:]+:[^:]+")
# The spellings pydantic's own JSON output uses (seconds, optional fraction, Z or a ±HH:MM offset).
_TIME: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_REQUIRED: Final = frozenset({"order_key", "channel", "shop_id", "order_id", "raw_status", "update_time"})
_FIELDS: Final = _REQUIRED | {"lines", "gross_amount", "historical"}
_new_change = tuple.__new__


def status_change_of(model: OrderStatusChanged) -> StatusChange:
    """The :class:`StatusChange` of a validated model."""
    return StatusChange(
        model.order_key,
        model.channel,
        model.shop_id,
        model.order_id,
        model.raw_status,
        model.update_time,
        tuple(LineIn(x.channel_product_id, x.channel_sku_id, x.quantity, x.unit_price) for x in model.lines),
        model.gross_amount,
        model.historical,
    )


def _line(raw: object) -> LineIn | None:
    # Only the shape the model dumps: all four fields present (two lines with an omitted variant take the model).
    if type(raw) is not dict or len(raw) != 4:
        return None
    try:
        product, variant, quantity, price = (
            raw["channel_product_id"],
            raw["channel_sku_id"],
            raw["quantity"],
            raw["unit_price"],
        )
    except KeyError:
        return None
    if (
        type(product) is not str
        or not product
        or (variant is not None and type(variant) is not str)
        or type(quantity) is not int
        or quantity <= 0
        or type(price) is not int
        or price < 0
    ):
        return None
    return _new_change(LineIn, (product, variant, quantity, price))


def _fast(data: dict[str, Any]) -> StatusChange | None:
    """The shape the model dumps (every field present), checked by hand; ``None`` when the model has to decide."""
    if len(data) != 9:
        return None
    try:
        key, channel, shop, order, raw, when, raw_lines, gross, historical = (
            data["order_key"],
            data["channel"],
            data["shop_id"],
            data["order_id"],
            data["raw_status"],
            data["update_time"],
            data["lines"],
            data["gross_amount"],
            data["historical"],
        )
    except KeyError:
        return None
    if (
        type(key) is not str
        or type(channel) is not str
        or type(shop) is not str
        or type(order) is not str
        or type(raw) is not str
        or type(when) is not str
        or type(raw_lines) is not list
        or type(historical) is not bool
        or (gross is not None and (type(gross) is not int or gross < 0))
        or channel not in _CHANNELS
        or _ORDER_KEY.fullmatch(key) is None
        or _TIME.fullmatch(when) is None
    ):
        return None
    known = _CHANNELS[channel]
    try:
        update_time = datetime.fromisoformat(when)
    except ValueError:
        return None
    lines = []
    for item in raw_lines:
        line = _line(item)
        if line is None:
            return None
        lines.append(line)
    return _new_change(StatusChange, (key, known, shop, order, raw, update_time, tuple(lines), gross, historical))


def parse_status_change(data: dict[str, Any]) -> StatusChange:
    """``OrderStatusChanged.model_validate(data)`` as a :class:`StatusChange` (see the module docstring).

    Raises:
        pydantic.ValidationError: exactly when the model rejects ``data``.
    """
    fast = _fast(data) if type(data) is dict else None
    return fast if fast is not None else status_change_of(OrderStatusChanged.model_validate(data))
