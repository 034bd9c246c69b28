"""The handler's payload reader (services/orders/payload.py) agrees with ``OrderStatusChanged.model_validate``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.contracts.marketplace import OrderLine, OrderStatusChanged
from services.orders import payload
from services.orders.payload import LineIn, StatusChange, parse_status_change, status_change_of

CHANNELS = ["tokopedia", "tiktok_shop", "shopee", "blibli", "bukalapak"]


def reference(data: Any) -> StatusChange | str:
    """What the model says: the validated fields, or the error text."""
    try:
        return status_change_of(OrderStatusChanged.model_validate(data))
    except ValidationError as exc:
        return f"ValidationError: {exc}"


def ours(data: Any) -> StatusChange | str:
    try:
        return parse_status_change(data)
    except ValidationError as exc:
        return f"ValidationError: {exc}"


def same(a: StatusChange | str, b: StatusChange | str) -> None:
    assert a == b
    if isinstance(a, StatusChange) and isinstance(b, StatusChange):
        # The datetime has the same instant and offset, and serialises to the same bytes in published payloads.
        assert a.update_time.utcoffset() == b.update_time.utcoffset()
        assert orjson.dumps(a.update_time) == orjson.dumps(b.update_time)
        assert orjson.dumps(a.update_time + timedelta(hours=24)) == orjson.dumps(b.update_time + timedelta(hours=24))
        assert [type(x) for x in a] == [type(x) for x in b]


offsets = st.one_of(
    st.just(UTC),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m))),
)
times = st.builds(
    lambda d, tz: d.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    offsets,
)
texts = st.text(max_size=12)
keys = st.one_of(
    st.builds(lambda c, s, o: f"{c}:{s}:{o}", st.sampled_from(CHANNELS), texts, texts),
    st.from_regex(r"[a-z_:\n]{0,4}:[a-zA-Z:\n]{0,4}:[a-z:\n]{0,4}", fullmatch=True),
    texts,
)
json_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-3, max_value=3), st.floats(allow_nan=False), texts
)


@st.composite
def line_dicts(draw: st.DrawFn) -> dict[str, Any]:
    line: dict[str, Any] = {
        "channel_product_id": draw(st.one_of(texts, json_values)),
        "quantity": draw(st.one_of(st.integers(min_value=-1, max_value=5), json_values)),
        "unit_price": draw(st.one_of(st.integers(min_value=-1, max_value=10**12), json_values)),
    }
    if draw(st.booleans()):
        line["channel_sku_id"] = draw(st.one_of(st.none(), texts, json_values))
    if draw(st.integers(0, 9)) == 0:
        line.pop(draw(st.sampled_from(sorted(line))))
    if draw(st.integers(0, 9)) == 0:
        line["extra"] = 1
    return line


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly the JSON the gateway publishes, with fields perturbed, dropped or added now and then."""
    when = draw(times)
    model = OrderStatusChanged(
        order_key="shopee:s1:o1",
        channel=draw(st.sampled_from(CHANNELS)),
        shop_id=draw(texts),
        order_id=draw(texts),
        raw_status=draw(texts),
        update_time=when,
        lines=[
            OrderLine(
                channel_product_id="p" + draw(texts), channel_sku_id=draw(st.none() | texts), quantity=q, unit_price=p
            )
            for q, p in draw(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 10**9)), max_size=3))
        ],
        gross_amount=draw(st.none() | st.integers(0, 10**12)),
        historical=draw(st.booleans()),
    )
    data: dict[str, Any] = orjson.loads(orjson.dumps(model.model_dump(mode="json")))
    if draw(st.integers(0, 3)) == 0:
        data["order_key"] = draw(keys)
    if draw(st.integers(0, 9)) == 0:
        data = {k: data[k] for k in sorted(payload._REQUIRED)}
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from([*payload._FIELDS, "other"]))
        action = draw(st.integers(0, 3))
        if action == 0:
            data.pop(field, None)
        elif action == 1:
            data[field] = draw(json_values)
        elif action == 2 and field == "lines":
            data["lines"] = draw(st.lists(line_dicts(), max_size=3))
        elif action == 3 and field == "update_time":
            data["update_time"] = draw(
                st.one_of(
                    st.from_regex(
                        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,8})?)?"
                        r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?",
                        fullmatch=True,
                    ),
                    times.map(lambda t: t.isoformat()),
                    times.map(lambda t: t.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
                )
            )
    return data


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
@example(
    {
        "order_key": "a:b:c",
        "channel": "shopee",
        "shop_id": "b",
        "order_id": "c",
        "raw_status": "X",
        "update_time": "2026-11-27T00:00:01Z",
    }
)
@example(
    {
        "order_key": "a:b:c\n",
        "channel": "shopee",
        "shop_id": "b",
        "order_id": "c",
        "raw_status": "X",
        "update_time": "2026-11-27T00:00:01.1234567Z",
    }
)
@example(
    {
        "order_key": "a:b:c",
        "channel": "shopee",
        "shop_id": "b",
        "order_id": "c",
        "raw_status": "X",
        "update_time": "2026-02-30T00:00:01+07:00",
        "lines": [],
    }
)
@example(
    {
        "order_key": "a:b:c",
        "channel": "shopee",
        "shop_id": "b",
        "order_id": "c",
        "raw_status": "X",
        "update_time": "0000-01-01T00:00:00Z",
    }
)
@example(
    {
        "order_key": "a:b:c",
        "channel": "shopee",
        "shop_id": "b",
        "order_id": "c",
        "raw_status": "X",
        "update_time": "2026-11-27T00:00:01",
        "historical": 1,
        "gross_amount": True,
    }
)
def test_reader_agrees_with_the_model(data: dict[str, Any]) -> None:
    same(ours(data), reference(data))


def test_gateway_shape_takes_the_fast_path() -> None:
    data = OrderStatusChanged(
        order_key="tiktok_shop:shop-1:b0000001",
        channel="tiktok_shop",
        shop_id="shop-1",
        order_id="b0000001",
        raw_status="AWAITING_SHIPMENT",
        update_time=datetime(2026, 11, 27, 1, 0, 0, 250000, tzinfo=UTC),
        lines=[OrderLine(channel_product_id="p-1", channel_sku_id="v-1", quantity=2, unit_price=45_000)],
        gross_amount=90_000,
    ).model_dump(mode="json")
    fast = payload._fast(data)
    assert fast is not None
    assert fast.lines == (LineIn("p-1", "v-1", 2, 45_000),)
    same(fast, reference(data))


@pytest.mark.parametrize(
    "data",
    [
        {},
        {
            "order_key": "bad",
            "channel": "shopee",
            "shop_id": "s",
            "order_id": "o",
            "raw_status": "X",
            "update_time": "2026-11-27T00:00:01Z",
        },
        {
            "order_key": "a:b:c",
            "channel": "lazada",
            "shop_id": "s",
            "order_id": "o",
            "raw_status": "X",
            "update_time": "2026-11-27T00:00:01Z",
        },
    ],
)
def test_rejections_are_the_models(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as mine:
        parse_status_change(data)
    with pytest.raises(ValidationError) as theirs:
        OrderStatusChanged.model_validate(data)
    assert str(mine.value) == str(theirs.value)
