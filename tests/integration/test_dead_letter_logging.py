"""The consumer core against the real database: a failing event's log lines carry value-free facts (class,
SQLSTATE, field paths, where the record is), and so does the error text stored in ``dead_letters``.

Each failure quotes a buyer's name or phone: pydantic quotes the input it refused, PostgreSQL the value it could
not cast, an undecodable envelope's error its whole input, a handler's rejection whatever it wrote.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
import structlog
from aiokafka import ConsumerRecord
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from structlog.testing import capture_logs

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.messaging.consumer import BatchConsumer, InboundEvent, Rejection
from infra.messaging.envelope import make_envelope
from infra.messaging.metrics import MessagingMetrics
from infra.settings import KafkaSettings
from tests.integration.messaging_support import create_scratch_schema

pytestmark = pytest.mark.integration

NAME, PHONE = "Siti Rahayu", "+6281234567890"


class _Buyer(BaseModel):
    name: int
    phone: str = Field(pattern=r"^[0-9]+$")


def _record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("test.errlog", 0, offset, 0, 0, b"shopee:s1:o1", value, None, 12, len(value), [])


def _event(offset: int, case: str, **data: object) -> ConsumerRecord[bytes, bytes]:
    envelope = make_envelope(
        type="karya.test.happened.v1",
        source="karya/tests",
        subject="shopee:s1:o1",
        data={"seq": offset, "case": case, **data},
    )
    return _record(offset, envelope.to_bytes())


def _handler(schema: str) -> Any:
    async def handle(conn: AsyncConnection, events: Sequence[InboundEvent]) -> list[Rejection]:
        rejections: list[Rejection] = []
        for e in events:
            data = e.envelope.data
            if data["case"] == "validation":
                _Buyer.model_validate(data["buyer"])
            elif data["case"] == "database":
                await conn.execute(text("SELECT CAST(CAST(:v AS text) AS uuid)"), {"v": data["phone"]})
            elif data["case"] == "rejected":
                rejections.append(Rejection(e, f"buyer {data['name']} is not on the list", {"rule": "not_listed"}))
            else:
                await conn.execute(
                    text(f"INSERT INTO {schema}.applied (event_id, subject, seq) VALUES (:i, :s, :q)"),
                    {"i": e.envelope.event_id, "s": e.envelope.subject, "q": data["seq"]},
                )
        return rejections

    return handle


async def _no_sleep(seconds: float) -> None:
    return None


async def test_dead_letter_logs_carry_facts_and_the_table_keeps_the_text(database: RoleUrls) -> None:
    schema = f"errlog_{uuid.uuid4().hex[:8]}"
    await create_scratch_schema(database.migrator, schema)
    engine = make_engine(database.service, pool_size=2)
    records = [
        _event(0, "good"),
        _event(1, "validation", buyer={"name": NAME, "phone": PHONE}),
        _event(2, "database", phone=PHONE),
        _event(3, "rejected", name=NAME),
        _record(4, orjson.dumps({"buyer": NAME})),  # not an envelope: its error quotes the whole input
    ]
    consumer = BatchConsumer(
        name=schema,
        schema=schema,
        engine=engine,
        handler=_handler(schema),
        settings=KafkaSettings(max_attempts=2, retry_backoff_ms=1),
        metrics=MessagingMetrics(),
        sleep=_no_sleep,
    )
    try:
        with capture_logs(
            processors=[structlog.contextvars.merge_contextvars, structlog.processors.format_exc_info]
        ) as logs:
            await consumer.process(records)
        async with engine.connect() as conn:
            rows = await conn.execute(text(f'SELECT "offset", error FROM {schema}.dead_letters'))
            stored: dict[int, str] = {int(r[0]): str(r[1]) for r in rows}
            applied = (await conn.execute(text(f"SELECT seq FROM {schema}.applied"))).scalars().all()
    finally:
        await engine.dispose()

    logged = json.dumps(logs, default=repr)
    assert NAME not in logged and PHONE not in logged
    isolating = [e for e in logs if e["event"] == "batch_failed_isolating"]
    assert [e["error"] for e in isolating] == ["ValidationError"]
    dead = {e["offset"]: e for e in logs if e["event"] == "event_dead_lettered"}
    assert set(dead) == {1, 2, 3, 4}
    assert all(e["see"] == f"{schema}.dead_letters" for e in dead.values())
    assert dead[1]["kind"] == "failed" and dead[1]["attempts"] == 2 and dead[1]["error"] == "ValidationError"
    assert dead[1]["fields"] == [
        {"loc": "name", "type": "int_parsing"},
        {"loc": "phone", "type": "string_pattern_mismatch"},
    ]
    assert dead[2]["kind"] == "failed" and dead[2]["sqlstate"] == "22P02"
    assert dead[2]["causes"][-1] == "InvalidTextRepresentationError"
    # A handler's reason is free text: only the facts it gave are logged.
    assert dead[3]["kind"] == "rejected" and dead[3]["rule"] == "not_listed" and "error" not in dead[3]
    assert dead[4]["kind"] == "undecodable" and dead[4]["error"] == "ValidationError"
    assert {"loc": "type", "type": "missing"} in dead[4]["fields"]

    assert applied == [0]
    # What is stored (and sent as karya-dlq-error) is value-free too: class, SQLSTATE, field paths.
    assert stored[1] == "ValidationError; fields name (int_parsing), phone (string_pattern_mismatch)"
    assert stored[2].startswith("DBAPIError [sqlstate 22P02]") and PHONE not in stored[2]
    assert stored[3] == f"rejected: buyer {NAME} is not on the list"  # a service's reason: the service's business
    assert stored[4].startswith("undecodable envelope: ValidationError; fields") and NAME not in stored[4]
