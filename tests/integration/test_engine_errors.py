"""A failing statement's error does not dump its parameters: they carry webhook bodies and order data (a batch
statement carries thousands), and error messages reach logs and dead letters. The driver may still quote the
one value it could not use."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls

pytestmark = pytest.mark.integration


async def test_a_failing_statement_does_not_dump_its_parameters(database: RoleUrls) -> None:
    engine = make_engine(database.service, pool_size=1)
    personal = "Siti Aminah, Jl. Merdeka 17"
    try:
        with pytest.raises(DBAPIError) as caught:
            async with engine.connect() as conn:
                await conn.execute(
                    text("SELECT CAST(:bad AS integer), CAST(:name AS text)"), {"bad": "x", "name": personal}
                )
        message = str(caught.value)
        assert "CAST" in message  # the statement is still named, for the on-call engineer
        assert personal not in message and personal not in repr(caught.value)
    finally:
        await engine.dispose()
