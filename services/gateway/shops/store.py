"""``shop_tokens`` (in the gateway's schema): the connected shops' tokens, sealed at rest, handed to the API clients.

:class:`ShopTokenStore` is the clients' :class:`~services.gateway.clients.tokens.TokenSource`: it keeps an opened
access token in memory for at most a minute (and never past a minute before its expiry), so a refresh made by
another gateway replica is seen within a minute. Rows are written only by a code exchange (``karya shops
connect``) or a refresh. A refresh holds the shop's row (``FOR UPDATE SKIP LOCKED``, :meth:`ShopTokenStore.claim`)
from reading the refresh token to storing the new pair, so two replicas never spend the same refresh token (Shopee
retires it at the first use).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.db.unit_of_work import Database
from services.gateway.clients.tokens import ShopAccess, ShopNotConnected, not_connected
from services.gateway.shops.auth import TokenGrant
from services.gateway.shops.crypto import TokenCipher

__all__ = ["Claim", "ConnectedShop", "DueToken", "ShopTokenStore"]

_SAFETY = timedelta(minutes=1)  # an access token this close to its expiry is not handed out from memory
_CACHE = timedelta(minutes=1)  # an opened token is read again after this long (a refresh by another replica)

_UPSERT = """INSERT INTO {table} AS t (channel, shop_id, shop_cipher, shop_name, key_id, access_token,
        refresh_token, access_expires_at, refresh_expires_at)
    VALUES (:channel, :shop_id, :shop_cipher, :shop_name, :key_id, :access, :refresh, :access_at, :refresh_at)
    ON CONFLICT (channel, shop_id) DO UPDATE SET
        shop_cipher = COALESCE(EXCLUDED.shop_cipher, t.shop_cipher),
        shop_name = COALESCE(EXCLUDED.shop_name, t.shop_name),
        key_id = EXCLUDED.key_id, access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,
        access_expires_at = EXCLUDED.access_expires_at,
        refresh_expires_at = COALESCE(EXCLUDED.refresh_expires_at, t.refresh_expires_at),
        connected_at = CASE WHEN :connected THEN clock_timestamp() ELSE t.connected_at END,
        refreshed_at = clock_timestamp(), refresh_failures = 0, refresh_error = NULL, refresh_failed_at = NULL"""
_COLUMNS = """channel, shop_id, shop_cipher, shop_name, key_id, access_token, refresh_token, access_expires_at,
    refresh_expires_at, connected_at, refreshed_at, refresh_failures, refresh_error, refresh_failed_at"""


@dataclass(frozen=True, slots=True)
class ConnectedShop:
    """A connected shop as ``karya shops list`` shows it (no token values)."""

    channel: str
    shop_id: str
    shop_name: str | None
    access_expires_at: datetime
    refresh_expires_at: datetime | None
    connected_at: datetime
    refreshed_at: datetime
    refresh_failures: int
    refresh_error: str | None


@dataclass(frozen=True, slots=True, repr=False)
class DueToken:
    """A shop whose access token should be refreshed now, with its opened refresh token."""

    channel: str
    shop_id: str
    shop_cipher: str | None
    refresh_token: str
    access_expires_at: datetime
    refresh_failures: int

    def __repr__(self) -> str:  # never print a token
        return f"DueToken({self.channel!r}, {self.shop_id!r}, access_expires_at={self.access_expires_at.isoformat()})"


class ShopTokenStore:
    """Sealed tokens per shop in ``shop_tokens`` of the gateway's schema (the gateway role only)."""

    def __init__(self, db: Database, cipher: TokenCipher, clock: Callable[[], float] = time.time) -> None:
        """``db``: the gateway's engine and schema (from its composition root)."""
        self._engine = db.engine
        self.table = f"{db.schema}.shop_tokens"
        self._upsert = text(_UPSERT.format(table=self.table))
        self._cipher = cipher
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[ShopAccess, datetime]] = {}  # → (token, read again after)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def access(self, channel: str, shop_id: str) -> ShopAccess:
        """The shop's current access token (see :class:`~services.gateway.clients.tokens.TokenSource`)."""
        now = self._now()
        cached = self._cache.get((channel, shop_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    text(f"SELECT {_COLUMNS} FROM {self.table} WHERE channel = :c AND shop_id = :s"),
                    {"c": channel, "s": shop_id},
                )
            ).one_or_none()
        if row is None:
            raise ShopNotConnected(not_connected(channel, shop_id))
        if row.access_expires_at <= now:
            why = f"; last refresh failed: {row.refresh_error}" if row.refresh_error else ""
            raise ShopNotConnected(
                f"{channel} shop {shop_id}: access token expired at {row.access_expires_at.isoformat()}{why}"
            )
        token = self._cipher.open(bytes(row.access_token), f"{channel}:{shop_id}:access", row.key_id)
        access = ShopAccess(token, row.shop_cipher)
        self._remember(channel, shop_id, access, row.access_expires_at)
        return access

    def _remember(self, channel: str, shop_id: str, access: ShopAccess, expires_at: datetime) -> None:
        self._cache[(channel, shop_id)] = (access, min(expires_at - _SAFETY, self._now() + _CACHE))

    async def save(self, grant: TokenGrant, *, connected: bool = False) -> None:
        """Store a grant (sealed); ``connected`` marks a new authorisation rather than a refresh."""
        async with self._engine.begin() as conn:
            await self.write(conn, grant, connected=connected)

    async def write(self, conn: AsyncConnection, grant: TokenGrant, *, connected: bool = False) -> None:
        """:meth:`save` inside the caller's transaction."""
        key = f"{grant.channel}:{grant.shop_id}"
        await conn.execute(
            self._upsert,
            {
                "channel": grant.channel,
                "shop_id": grant.shop_id,
                "shop_cipher": grant.shop_cipher,
                "shop_name": grant.shop_name,
                "key_id": self._cipher.key_id,
                "access": self._cipher.seal(grant.access_token, f"{key}:access"),
                "refresh": self._cipher.seal(grant.refresh_token, f"{key}:refresh"),
                "access_at": grant.access_expires_at,
                "refresh_at": grant.refresh_expires_at,
                "connected": connected,
            },
        )
        self._cache.pop((grant.channel, grant.shop_id), None)  # read back (with the row's cipher) at the next call

    async def due(self, within: timedelta) -> list[tuple[str, str]]:
        """``(channel, shop_id)`` of the shops whose access token expires within ``within`` from now, soonest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    f"SELECT channel, shop_id FROM {self.table} WHERE access_expires_at < :until "
                    "ORDER BY access_expires_at"
                ),
                {"until": self._now() + within},
            )
            return [(r.channel, r.shop_id) for r in rows]

    @asynccontextmanager
    async def claim(self, channel: str, shop_id: str, within: timedelta) -> AsyncIterator[Claim | None]:
        """Hold a due shop's row for its refresh; None when it is not due any more or another replica holds it."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        f"SELECT {_COLUMNS} FROM {self.table} WHERE channel = :c AND shop_id = :s "
                        "AND access_expires_at < :until FOR UPDATE SKIP LOCKED"
                    ),
                    {"c": channel, "s": shop_id, "until": self._now() + within},
                )
            ).one_or_none()
            if row is None:
                yield None
                return
            refresh = self._cipher.open(bytes(row.refresh_token), f"{channel}:{shop_id}:refresh", row.key_id)
            token = DueToken(channel, shop_id, row.shop_cipher, refresh, row.access_expires_at, row.refresh_failures)
            yield Claim(self, conn, token)

    async def shops(self) -> list[ConnectedShop]:
        """Every connected shop, by channel and shop id (no token values)."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT {_COLUMNS} FROM {self.table} ORDER BY 1, 2"))).all()
        return [
            ConnectedShop(
                r.channel,
                r.shop_id,
                r.shop_name,
                r.access_expires_at,
                r.refresh_expires_at,
                r.connected_at,
                r.refreshed_at,
                r.refresh_failures,
                r.refresh_error,
            )
            for r in rows
        ]


class Claim:
    """A due shop's row, held until the refresh is stored (:meth:`save`) or its failure recorded (:meth:`fail`)."""

    def __init__(self, store: ShopTokenStore, conn: AsyncConnection, token: DueToken) -> None:
        self._store = store
        self._conn = conn
        self.token = token

    async def save(self, grant: TokenGrant) -> None:
        """Store the refreshed pair (clears the failure count)."""
        await self._store.write(self._conn, grant)

    async def fail(self, error: str) -> None:
        """Record a failed refresh (``error`` is Karya's text, never a token)."""
        await self._conn.execute(
            text(
                f"UPDATE {self._store.table} SET refresh_failures = refresh_failures + 1, refresh_error = :e, "
                "refresh_failed_at = clock_timestamp() WHERE channel = :c AND shop_id = :s"
            ),
            {"c": self.token.channel, "s": self.token.shop_id, "e": error[:500]},
        )
