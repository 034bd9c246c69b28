"""Storing a verified webhook delivery: raw row and outbox message in one transaction, once per key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import text

from infra.db.unit_of_work import Database
from infra.errors import describe_error
from infra.logging import get_logger
from infra.messaging.envelope import make_envelope
from infra.messaging.outbox import OutboundMessage
from services.contracts.gateway import DELIVERY_RECEIVED, DeliveryReceived
from services.gateway.dedupe import DeliveryKeys

SOURCE = "karya/gateway"
# Never stored: the signature itself and anything that is a credential.
_DROPPED_HEADERS = frozenset({"authorization", "authorization-hmac", "cookie", "x-tts-access-token"})

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    """The outcome of :meth:`DeliveryStore.store`: the row id, and whether this call created it."""

    delivery_id: int | None
    created: bool


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers worth keeping, lower-cased, without the signature or other credentials."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}


@dataclass(frozen=True, slots=True)
class _Pending:
    channel: str
    webhook_type: str
    keys: DeliveryKeys
    body: bytes
    headers: str  # storable headers as JSON text
    answer: asyncio.Future[StoredDelivery]
    publish: bool = True  # False: a refused delivery, kept for the audit trail only


class DeliveryStore:
    """Inserts raw deliveries into the gateway's ``raw_deliveries`` with their ``delivery_received`` outbox row.

    Group commit: deliveries that arrive while a transaction is being written wait and go together in the next one
    (one statement for the rows, one for their outbox messages), so concurrent webhooks share a commit instead of
    each paying for its own. Every caller still returns only after its delivery is durably committed. If a group
    fails, its deliveries are stored one by one, so one bad delivery cannot fail the others.
    """

    def __init__(
        self,
        db: Database,
        topic: str,
        after_commit: Callable[[], None] | None = None,
        max_group: int = 200,
    ) -> None:
        """``db``: the gateway's engine and schema; ``after_commit`` is called once new deliveries are committed
        (the runtime wakes its outbox relay)."""
        self._db = db
        self._insert = text(_INSERT.format(raw_deliveries=f"{db.schema}.raw_deliveries"))
        self._topic = topic
        self._after_commit = after_commit
        self._max_group = max_group
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def store(
        self,
        channel: str,
        webhook_type: str,
        keys: DeliveryKeys,
        body: bytes,
        headers: Mapping[str, str],
        *,
        publish: bool = True,
    ) -> StoredDelivery:
        """Store one delivery unless its dedupe key is known; a duplicate changes nothing.

        ``publish=False`` stores a refused delivery (under a key of its own) without an outbox row: it is kept
        as evidence of what arrived, and nothing downstream sees it.
        """
        answer: asyncio.Future[StoredDelivery] = asyncio.get_running_loop().create_future()
        stored_headers = orjson.dumps(storable_headers(headers)).decode()
        self._queue.append(_Pending(channel, webhook_type, keys, body, stored_headers, answer, publish))
        if self._writer is None or self._writer.done():
            # A task of its own: a caller that goes away (client disconnect) must not take the others' commit along.
            self._writer = asyncio.create_task(self._write_queued())
        return await asyncio.shield(answer)

    async def _write_queued(self) -> None:
        while self._queue:
            group, self._queue = self._queue[: self._max_group], self._queue[self._max_group :]
            results: list[StoredDelivery | Exception]
            try:
                results = [*await self._store_group(group)]
            except Exception as exc:
                # Described, not dumped: a database error's text can quote a delivery's body.
                log.warning("delivery_group_failed", deliveries=len(group), **describe_error(exc))
                results = [await self._store_alone(p) for p in group]
            if self._after_commit is not None and any(r.created for r in results if isinstance(r, StoredDelivery)):
                self._after_commit()
            for pending, result in zip(group, results, strict=True):
                if pending.answer.done():
                    continue
                if isinstance(result, StoredDelivery):
                    pending.answer.set_result(result)
                else:
                    pending.answer.set_exception(result)

    async def _store_alone(self, pending: _Pending) -> StoredDelivery | Exception:
        try:
            return (await self._store_group([pending]))[0]
        except Exception as exc:
            return exc

    async def _store_group(self, group: list[_Pending]) -> list[StoredDelivery]:
        async with self._db.begin() as uow:
            rows = await uow.conn.execute(
                self._insert,
                {
                    "channels": [p.channel for p in group],
                    "types": [p.webhook_type for p in group],
                    "keys": [p.keys.dedupe_key for p in group],
                    "orders": [p.keys.order_key for p in group],
                    "bodies": [p.body for p in group],
                    "headers": [p.headers for p in group],
                },
            )
            inserted = {r.dedupe_key: (int(r.delivery_id), r.received_at) for r in rows}
            results: list[StoredDelivery] = []
            messages: list[OutboundMessage] = []
            for p in group:
                # The same key twice in one group: the first one is the stored delivery, the rest are duplicates.
                hit = inserted.pop(p.keys.dedupe_key, None)
                if hit is None:
                    results.append(StoredDelivery(None, created=False))
                    continue
                delivery_id, received_at = hit
                results.append(StoredDelivery(delivery_id, created=True))
                if not p.publish:
                    continue
                envelope = make_envelope(
                    type=DELIVERY_RECEIVED,
                    source=SOURCE,
                    subject=p.keys.order_key or f"{p.channel}:unknown:{delivery_id}",
                    data=delivery_event(delivery_id, p.channel, p.webhook_type, p.keys, p.body, received_at),
                )
                messages.append(OutboundMessage.of(self._topic, envelope))
            await uow.publish(messages)
        return results


_INSERT = (
    "INSERT INTO {raw_deliveries} (channel, webhook_type, dedupe_key, order_key, body, headers) "
    "SELECT c, t, k, o, b, CAST(h AS jsonb) FROM unnest(CAST(:channels AS text[]), CAST(:types AS text[]), "
    "CAST(:keys AS text[]), CAST(:orders AS text[]), CAST(:bodies AS bytea[]), CAST(:headers AS text[])) "
    "WITH ORDINALITY AS u(c, t, k, o, b, h, n) ORDER BY n "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key, delivery_id, received_at"
)


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
