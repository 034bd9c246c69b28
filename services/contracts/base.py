"""Common pieces of event payloads."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.channels import Channel

__all__ = ["Channel", "OrderKey", "Payload", "Rupiah", "order_key"]

Rupiah = Annotated[int, Field(ge=0, description="Whole rupiah (IDR has no minor unit in practice).")]
OrderKey = Annotated[str, Field(pattern=r"^[a-z_]+:[^:]+:[^:]+$", description="marketplace:shop:order")]


class Payload(BaseModel):
    """Base of every event payload: immutable, unknown fields rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def order_key(channel: str, shop_id: str, order_id: str) -> str:
    """The partition key of an order: ``marketplace:shop:order``."""
    return f"{channel}:{shop_id}:{order_id}"
