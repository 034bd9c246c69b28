"""Only the roles that run outbox relays (the service and the gateway) can take advisory locks, so no other role
can hold a relay's lock and silence it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from infra.db.engine import make_engine
from infra.db.roles import RoleUrls
from infra.errors import sqlstate_of

pytestmark = pytest.mark.integration

LOCK_CALLS = (
    "SELECT pg_try_advisory_lock(hashtext('karya-outbox:orders'))",
    "SELECT pg_try_advisory_lock(1, 2)",
    "SELECT pg_try_advisory_lock_shared(hashtext('karya-outbox:ledger'))",
    "SELECT pg_try_advisory_xact_lock(hashtext('karya-outbox:orders'))",
    "SELECT pg_advisory_xact_lock(hashtext('karya-outbox:gateway'))",
    "SELECT pg_advisory_lock(hashtext('karya-outbox:gateway'))",
)


@pytest.mark.parametrize("role", ["auditor", "migrator"])
async def test_roles_other_than_the_service_cannot_take_advisory_locks(database: RoleUrls, role: str) -> None:
    engine = make_engine(getattr(database, role), pool_size=1)
    try:
        for call in LOCK_CALLS:
            async with engine.connect() as conn:
                with pytest.raises(DBAPIError) as refused:
                    await conn.execute(text(call))
            assert sqlstate_of(refused.value) == "42501", f"{role} ran {call}"
    finally:
        await engine.dispose()


@pytest.mark.parametrize("role", ["service", "gateway"])
async def test_the_relay_roles_take_and_release_the_relay_lock(database: RoleUrls, role: str) -> None:
    engine = make_engine(getattr(database, role), pool_size=2)
    try:
        async with engine.connect() as conn:
            got = (
                await conn.execute(text("SELECT pg_try_advisory_lock(hashtext('karya-outbox:grant-test'))"))
            ).scalar()
            assert got is True
            released = (
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext('karya-outbox:grant-test'))"))
            ).scalar()
            assert released is True
            assert (await conn.execute(text("SELECT pg_try_advisory_xact_lock(7, 8)"))).scalar() is True
            await conn.rollback()
    finally:
        await engine.dispose()
