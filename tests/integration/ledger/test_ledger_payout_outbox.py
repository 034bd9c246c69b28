"""`karya ledger payout` announces its entry like every other posting: one ``entry_posted`` in the ledger outbox,
written in the posting's transaction, and none for a repeated (or refused) payout of the same payout id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from infra.db.engine import make_engine
from infra.messaging.outbox import decode_headers
from infra.messaging.topics import LEDGER_ENTRIES
from services.contracts.ledger import ENTRY_POSTED
from services.ledger.adapters.journal_repo import normal_balances
from services.ledger.domain import accounts
from services.ledger.domain.postings import payout_key
from tests.contract_validation import validate_published
from tests.integration.ledger_support import (
    Batch,
    LedgerDatabase,
    completed,
    ledger_uow,
    new_inmate,
    new_order_key,
    new_processor,
    post,
    run_payout,
    settled,
)

pytestmark = pytest.mark.integration

_OUTBOX = "SELECT id, topic, key, payload, headers FROM ledger.outbox ORDER BY id"


async def test_payout_enqueues_one_entry_posted_and_a_repeat_enqueues_nothing(own_database: LedgerDatabase) -> None:
    db = own_database
    engine = make_engine(db.urls.service, pool_size=1)
    inmate, key = new_inmate(), new_order_key()
    order = [Batch("B-TNG-1", "TNG-MAT-001", "tangerang", 5, 60_000, 12_000, "sup-pandan", ((inmate, 1),))]
    try:
        at = datetime(2026, 4, 1, tzinfo=UTC)
        assert await post(engine, new_processor(), [completed(key, order, at), settled(key, 300_000, at)]) == []
        savings = accounts.inmate_savings(inmate)
        async with engine.connect() as conn:
            balance = (await normal_balances(ledger_uow(conn), [savings]))[savings]
            before = (await conn.execute(text(_OUTBOX))).all()
        assert balance > 100

        async def payout(amount: int, payout_id: str) -> Any:
            return await run_payout(db.urls, inmate, amount, payout_id)

        first = await payout(balance - 100, "REL-1")
        assert first.exit_code == 0, first.output
        async with engine.connect() as conn:
            after = (await conn.execute(text(_OUTBOX))).all()
            entry = (
                await conn.execute(
                    text(
                        "SELECT sequence, posting_key, kind, effective_at, chain_hash FROM ledger.journal_entries "
                        "WHERE posting_key = :k"
                    ),
                    {"k": payout_key(inmate, "REL-1")},
                )
            ).one()
        assert after[: len(before)] == before
        new = after[len(before) :]
        assert len(new) == 1, "the payout must enqueue exactly one event"
        row = new[0]
        assert row.topic == LEDGER_ENTRIES
        assert bytes(row.key) == entry.posting_key.encode()  # no order: keyed by the posting key
        assert dict(decode_headers(row.headers))["karya-event-type"] == ENTRY_POSTED.encode()
        envelope = validate_published(bytes(row.payload))  # fits schemas/events/karya.ledger.entry_posted.v1
        assert envelope["type"] == ENTRY_POSTED and envelope["subject"] == entry.posting_key
        data = envelope["data"]
        assert datetime.fromisoformat(data.pop("effective_at")) == entry.effective_at
        assert data == {
            "sequence": entry.sequence,
            "posting_key": entry.posting_key,
            "kind": "payout",
            "order_key": None,
            "batch_id": None,
            "policy_ref": None,
            "amount": balance - 100,
            "chain_hash": entry.chain_hash,
        }

        again = await payout(balance - 100, "REL-1")  # the operator retries: the same payout
        assert again.exit_code == 0 and "already posted" in again.output, again.output
        other = await payout(50, "REL-1")  # the same payout id for a different amount: refused
        assert other.exit_code == 1, other.output
        async with engine.connect() as conn:
            assert (await conn.execute(text(_OUTBOX))).all() == after
    finally:
        await engine.dispose()
