"""Unallocated proceeds are visible and resolved from the command line, as an operator runs it, on a database of the
test's own: ``karya ledger unallocated`` lists what waits and why, ``karya ledger pending`` and the parked gauges
show a refund waiting for the allocation, ``karya ledger allocate`` refuses a bad pick by its rule and posts a good
one once, and the refund that waited posts with it."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.messaging.outbox import decode_headers
from services.contracts.ledger import ORDER_ALLOCATED_BY_PERSON
from services.ledger.app import SCHEMA
from services.ledger.parked import ParkedGauges
from tests.integration.ledger.scenario_support import T, add_batch, completed_without_allocation, journal_of
from tests.integration.ledger_support import (
    LedgerDatabase,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    refunded,
    run_karya,
    settled,
    uid,
)

pytestmark = pytest.mark.integration


async def test_unallocated_orders_are_listed_and_allocated_from_the_command_line(
    own_database: LedgerDatabase,
) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=2)
    owner = make_engine(db.urls.migrator, pool_size=1)
    key, batch, inmate = new_order_key(), f"B-CLI-{uid()}", new_inmate()
    registry = CollectorRegistry()
    gauges = ParkedGauges(registry)
    try:
        await add_batch(owner, batch, "sukamiskin", f"SMK-T{uid()}", produced=2, unit_price=100_000,
                        unit_material_cost=30_000, supplier="sup-kain", work_group=[(inmate, 1)])  # fmt: skip
        processor = new_processor()
        fees = {"commission_fee": 12_000, "service_fee": 4_000}
        envelopes = [completed_without_allocation(key, "sukamiskin", 200_000), settled(key, 200_000, T, fees=fees)]
        assert await post(engine, processor, envelopes) == []
        assert await post(engine, processor, [refunded(key, "R1", 50_000, T)]) == []

        listed = await run_karya(db.urls, "ledger", "unallocated", "--json")
        assert listed.returncode == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        assert (row["order_key"], row["lapas_id"], row["gross"], row["held"], row["settlements"]) == (
            key,
            "sukamiskin",
            200_000,
            200_000,
            1,
        )
        assert row["reason"].startswith("no batch allocated")
        plain = await run_karya(db.urls, "ledger", "unallocated")
        assert key in plain.stdout and "1 orders unallocated, 200,000 rupiah held" in plain.stdout
        pending = json.loads((await run_karya(db.urls, "ledger", "pending", "--json")).stdout)
        assert [(r["order_key"], r["waiting_for"]) for r in pending] == [(key, "allocation")]
        await gauges.refresh(engine, SCHEMA)
        assert registry.get_sample_value("karya_ledger_parked_events", {"waiting_for": "allocation"}) == 1

        refused = await run_karya(db.urls, "ledger", "allocate", key, "--batch", f"{batch}:3")
        assert refused.returncode == 1 and "quantity_fits" in refused.stderr
        malformed = await run_karya(db.urls, "ledger", "allocate", key, "--batch", batch)
        assert malformed.returncode == 1 and "BATCH:QTY" in malformed.stderr

        done = await run_karya(db.urls, "ledger", "allocate", key, "--batch", f"{batch}:2", "--as", "siti")
        assert done.returncode == 0, done.stderr
        assert f"allocated {key}: posted {key}:release:s1, {key}:distribution:{batch}" in done.stdout
        async with engine.connect() as conn:  # the orders service learns who allocated
            query = text("SELECT payload, headers FROM ledger.outbox WHERE key = :k ORDER BY id")
            rows = list(await conn.execute(query, {"k": key.encode()}))
        told = [json.loads(bytes(r.payload)) for r in rows if _event_type(r.headers) == ORDER_ALLOCATED_BY_PERSON]
        assert [m["data"]["allocated_by"] for m in told] == ["siti"]
        again = await run_karya(db.urls, "ledger", "allocate", key, "--batch", f"{batch}:2")
        assert again.returncode == 0 and "already allocated" in again.stdout

        assert set(await journal_of(engine, key)) == {
            "completed",
            "settlement:ESC-1",
            "release:s1",
            f"distribution:{batch}",
            "refund:R1",  # the refund that waited for the allocation posted with it
            f"refund:R1:{batch}",
        }
        assert "0 orders unallocated" in (await run_karya(db.urls, "ledger", "unallocated")).stdout
        async with engine.connect() as conn:
            waiting = (await conn.execute(text("SELECT count(*) FROM ledger.pending_events"))).scalar_one()
        assert waiting == 0
    finally:
        await owner.dispose()
        await engine.dispose()


def _event_type(headers: bytes) -> str:
    return dict(decode_headers(headers))["karya-event-type"].decode()
