"""``error_text``: what is stored or sent about an error names classes, codes and field paths, never input."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from infra.errors import error_text, quoted_code
from services.orders.domain.channels import UnmappableStatus

_NAME, _PHONE = "Siti Rahayu", "0812-3456-7890"


class _Buyer(BaseModel):
    name: int
    phone: int


class _Coded(Exception):
    loggable_message = True


def test_validation_error_keeps_paths_and_types_not_inputs() -> None:
    with pytest.raises(ValidationError) as caught:
        _Buyer.model_validate({"name": _NAME, "phone": _PHONE})
    text = error_text(caught.value, context="unparseable delivery")
    assert text == "unparseable delivery: ValidationError; fields name (int_parsing), phone (int_parsing)"
    assert _NAME not in text and _PHONE not in text


def test_plain_error_message_is_left_out_but_its_cause_chain_is_named() -> None:
    try:
        try:
            raise KeyError(_NAME)
        except KeyError as inner:
            raise ValueError(f"bad buyer {_NAME}") from inner
    except ValueError as exc:
        assert error_text(exc) == "ValueError; caused by KeyError"


def test_loggable_messages_are_kept() -> None:
    assert error_text(_Coded("order shopee:1:A has no completion")) == "_Coded: order shopee:1:A has no completion"


def test_quoted_code_quotes_codes_and_describes_anything_else_by_length() -> None:
    assert quoted_code("READY_TO_SHIP") == "'READY_TO_SHIP'"
    assert quoted_code(400) == "'400'"
    assert quoted_code(_PHONE) == f"(not a code: {len(_PHONE)} characters)"


def test_an_unmappable_status_is_loggable_without_quoting_a_value_sent_as_status() -> None:
    exc = UnmappableStatus("shopee", _NAME)
    assert str(exc) == f"unmappable order status (not a code: {len(_NAME)} characters) for channel 'shopee'"
    assert _NAME not in error_text(exc)
    assert str(UnmappableStatus("shopee", "TELEPORTED")) == "unmappable order status 'TELEPORTED' for channel 'shopee'"
