"""A workspace read is one snapshot (:func:`services.finance.scope.scoped_read`, REPEATABLE READ, READ ONLY): an entry
posted while a request reads changes neither the chain heads it shows nor its figures, so the root hash stamped on a
page is that of the numbers on it (the journal has one chain per segment: no single head row bounds a read)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from services.finance.queries import chain
from services.finance.scope import ReadSchemas, StaticViewer, scoped_read
from services.ledger.adapters.journal_repo import post_entries
from services.ledger.domain.hashchain import heads_root
from tests.integration.ledger.test_chain_segments_db import order_in, sale
from tests.integration.ledger_support import ledger_uow

pytestmark = pytest.mark.integration

BANK = "asset:marketplace_receivable:cipinang:shopee"


async def test_a_read_holds_one_snapshot_while_entries_are_posted(database: RoleUrls) -> None:
    reader, writer = make_engine(database.finance, pool_size=1), make_engine(database.service, pool_size=1)
    lines = f"SELECT count(*) FROM ledger.journal_lines WHERE account = '{BANK}'"
    try:
        async for reads in scoped_read(reader, StaticViewer("pusat", "auditor_pusat", None), ReadSchemas()):
            head = await chain.chain_head(reads)
            heads = await chain.segment_heads(reads)
            counted = (await reads.conn.execute(text(lines))).scalar_one()
            assert head.hash == heads_root(heads)
            async with writer.begin() as conn:
                await post_entries(ledger_uow(conn), [sale(order_in("s5"))])
            assert await chain.chain_head(reads) == head and await chain.segment_heads(reads) == heads
            assert (await reads.conn.execute(text(lines))).scalar_one() == counted
            with pytest.raises(DBAPIError, match="read-only transaction"):
                await reads.conn.execute(text("CREATE TEMP TABLE t (x int)"))
        async for reads in scoped_read(reader, StaticViewer("pusat", "auditor_pusat", None), ReadSchemas()):
            after = await chain.chain_head(reads)
            assert after.hash != head.hash and after.sequence > head.sequence
            assert (await reads.conn.execute(text(lines))).scalar_one() == counted + 1
    finally:
        await reader.dispose()
        await writer.dispose()
