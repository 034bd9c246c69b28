"""Storing a verified webhook delivery: raw row and outbox message in one transaction, once per key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.messaging.envelope import make_envelope
from infra.messaging.outbox import OutboundMessage, enqueue
from infra.messaging.topics import GATEWAY_RAW_DELIVERIES
from services.contracts.gateway import DELIVERY_RECEIVED, DeliveryReceived
from services.gateway.dedupe import DeliveryKeys

SCHEMA = "gateway"
SOURCE = "karya/gateway"
# Never stored: the signature itself and anything that is a credential.
_DROPPED_HEADERS = frozenset({"authorization", "authorization-hmac", "cookie", "x-tts-access-token"})


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """The outcome of :meth:`DeliveryStore.store`: the row id, and whether this call created it."""

    delivery_id: int | None
    created: bool


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers worth keeping, lower-cased, without the signature or other credentials."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}


class DeliveryStore:
    """Inserts raw deliveries into ``gateway.raw_deliveries`` with their ``delivery_received`` outbox row."""

    def __init__(
        self, engine: AsyncEngine, topic: str = GATEWAY_RAW_DELIVERIES, after_commit: Callable[[], None] | None = None
    ) -> None:
        """``after_commit`` is called once a new delivery is committed (the runtime wakes its outbox relay)."""
        self._engine = engine
        self._topic = topic
        self._after_commit = after_commit

    async def store(
        self, channel: str, webhook_type: str, keys: DeliveryKeys, body: bytes, headers: Mapping[str, str]
    ) -> StoredDelivery:
        """Store one delivery unless its dedupe key is known; a duplicate changes nothing."""
        stored = await self._store(channel, webhook_type, keys, body, headers)
        if stored.created and self._after_commit is not None:
            self._after_commit()
        return stored

    async def _store(
        self, channel: str, webhook_type: str, keys: DeliveryKeys, body: bytes, headers: Mapping[str, str]
    ) -> StoredDelivery:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        f"INSERT INTO {SCHEMA}.raw_deliveries "
                        "(channel, webhook_type, dedupe_key, order_key, body, headers) "
                        "VALUES (:channel, :type, :key, :order_key, :body, CAST(:headers AS jsonb)) "
                        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING delivery_id, received_at"
                    ),
                    {
                        "channel": channel,
                        "type": webhook_type,
                        "key": keys.dedupe_key,
                        "order_key": keys.order_key,
                        "body": body,
                        "headers": orjson.dumps(storable_headers(headers)).decode(),
                    },
                )
            ).first()
            if row is None:
                return StoredDelivery(None, created=False)
            delivery_id, received_at = int(row[0]), row[1]
            envelope = make_envelope(
                type=DELIVERY_RECEIVED,
                source=SOURCE,
                subject=keys.order_key or f"{channel}:unknown:{delivery_id}",
                data=delivery_event(delivery_id, channel, webhook_type, keys, body, received_at),
            )
            await enqueue(conn, SCHEMA, [OutboundMessage.of(self._topic, envelope)])
            return StoredDelivery(delivery_id, created=True)


def delivery_event(
    delivery_id: int, channel: str, webhook_type: str, keys: DeliveryKeys, body: bytes, received_at: datetime
) -> dict[str, object]:
    """The ``delivery_received`` payload (validated against its contract)."""
    return DeliveryReceived.model_validate(
        {
            "delivery_id": delivery_id,
            "channel": channel,
            "webhook_type": webhook_type,
            "dedupe_key": keys.dedupe_key,
            "order_key": keys.order_key,
            "body": body.decode("utf-8", errors="replace"),
            "received_at": received_at,
        }
    ).model_dump(mode="json")
