"""Fixtures of the ledger integration tests: the session database with the demo policies, or a database of
the test's own (for tests that break the hash chain or count on exact sequences)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from infra.db.roles import RoleUrls
from tests.conftest import Services
from tests.integration.ledger_support import LedgerDatabase, fresh_database, load_demo_policies


@pytest.fixture(scope="session")
async def ledger_db(database: RoleUrls) -> RoleUrls:
    """The session database with the demo split policies loaded (once)."""
    await load_demo_policies(database.service)
    return database


@pytest.fixture
async def own_database(services: Services) -> AsyncIterator[LedgerDatabase]:
    """A freshly migrated database with the demo policies, dropped after the test."""
    async with fresh_database(services.admin_url) as db:
        yield db
