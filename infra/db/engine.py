"""Async SQLAlchemy engines over asyncpg."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the asyncpg driver (``postgresql://`` is accepted too)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "karya") -> AsyncEngine:
    """An engine for one process.

    No ping on checkout (it costs a round trip per transaction): a connection lost to a database restart fails
    its statement, SQLAlchemy then invalidates the pool, and the consumer core retries with backoff. Errors do
    not dump the statement's parameters (they carry webhook bodies and order data, thousands in a batch
    statement, and error messages end up in logs and dead letters); the driver may still quote the one value it
    refused.
    """
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        hide_parameters=True,
        connect_args={"server_settings": {"application_name": application_name}, "timeout": 5},
    )


async def database_is_ready(engine: AsyncEngine) -> bool:
    """True when a connection can be made and answers ``SELECT 1``."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
