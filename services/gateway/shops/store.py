"""``gateway.shop_tokens``: the connected shops' tokens, sealed at rest, handed to the API clients.

:class:`ShopTokenStore` is the clients' :class:`~services.gateway.clients.tokens.TokenSource`: it reads a shop's
row once and keeps the opened access token in memory until a minute before it expires (the refresher replaces it
when it saves a new one). Rows are written only by a code exchange (``karya shops connect``) or a refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.gateway.clients.tokens import ShopAccess, ShopNotConnected, not_connected
from services.gateway.shops.auth import TokenGrant
from services.gateway.shops.crypto import TokenCipher

__all__ = ["ConnectedShop", "DueToken", "ShopTokenStore"]

_SAFETY = timedelta(minutes=1)  # an access token this close to its expiry is not handed out from memory

_UPSERT = text(
    """INSERT INTO gateway.shop_tokens AS t (channel, shop_id, shop_cipher, shop_name, key_id, access_token,
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
)
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
    """Sealed tokens per shop in ``gateway.shop_tokens`` (the gateway role only)."""

    def __init__(self, engine: AsyncEngine, cipher: TokenCipher, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._cipher = cipher
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[ShopAccess, datetime]] = {}

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def access(self, channel: str, shop_id: str) -> ShopAccess:
        """The shop's current access token (see :class:`~services.gateway.clients.tokens.TokenSource`)."""
        now = self._now()
        cached = self._cache.get((channel, shop_id))
        if cached is not None and cached[1] - _SAFETY > now:
            return cached[0]
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    text(f"SELECT {_COLUMNS} FROM gateway.shop_tokens WHERE channel = :c AND shop_id = :s"),
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
        self._cache[(channel, shop_id)] = (access, row.access_expires_at)
        return access

    async def save(self, grant: TokenGrant, *, connected: bool = False) -> None:
        """Store a grant (sealed); ``connected`` marks a new authorisation rather than a refresh."""
        key = f"{grant.channel}:{grant.shop_id}"
        async with self._engine.begin() as conn:
            await conn.execute(
                _UPSERT,
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
        self._cache[(grant.channel, grant.shop_id)] = (
            ShopAccess(grant.access_token, grant.shop_cipher),
            grant.access_expires_at,
        )
        if grant.shop_cipher is None:  # the row may hold one from the connection: read it back next time
            self._cache.pop((grant.channel, grant.shop_id), None)

    async def due(self, within: timedelta) -> list[DueToken]:
        """Shops whose access token expires within ``within`` from now, soonest first."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        f"SELECT {_COLUMNS} FROM gateway.shop_tokens WHERE access_expires_at < :until "
                        "ORDER BY access_expires_at"
                    ),
                    {"until": self._now() + within},
                )
            ).all()
        return [
            DueToken(
                r.channel,
                r.shop_id,
                r.shop_cipher,
                self._cipher.open(bytes(r.refresh_token), f"{r.channel}:{r.shop_id}:refresh", r.key_id),
                r.access_expires_at,
                r.refresh_failures,
            )
            for r in rows
        ]

    async def record_failure(self, channel: str, shop_id: str, error: str) -> None:
        """Remember a failed refresh (``error`` is Karya's text, never a token)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE gateway.shop_tokens SET refresh_failures = refresh_failures + 1, refresh_error = :e, "
                    "refresh_failed_at = clock_timestamp() WHERE channel = :c AND shop_id = :s"
                ),
                {"c": channel, "s": shop_id, "e": error[:500]},
            )

    async def shops(self) -> list[ConnectedShop]:
        """Every connected shop, by channel and shop id (no token values)."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT {_COLUMNS} FROM gateway.shop_tokens ORDER BY 1, 2"))).all()
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
