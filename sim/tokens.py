"""The simulated marketplaces' seller authorisation: codes, access and refresh tokens per shop, shop ciphers.

Shopee and TikTok Shop authorise per shop: the seller's consent gives a one-time code (here
:meth:`SimTokens.authorize`, or ``POST /_sim/authorize`` — the simulator has no login page), the code is exchanged
for an access token and a refresh token, and a refresh replaces both (the old refresh token stops working, as
Shopee documents). Every shop-level API call of the simulator checks the access token: unknown, expired or another
shop's token is refused. Tests steer failures with :attr:`SimTokens.refuse_refresh`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["SimGrant", "SimTokens"]


@dataclass(slots=True)
class SimGrant:
    """Tokens issued to one shop, with their expiry (unix seconds)."""

    channel: str
    shop_id: str
    access_token: str
    refresh_token: str
    access_expires_at: int
    refresh_expires_at: int


class SimTokens:
    """Issued codes and tokens of the simulated channels (in memory, one event loop: no locking)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        access_ttl_s: dict[str, int] | None = None,
        refresh_ttl_s: int = 30 * 86_400,
    ) -> None:
        self._clock = clock
        self.access_ttl_s = {"shopee": 4 * 3600, "tiktok_shop": 7 * 86_400, **(access_ttl_s or {})}
        self.refresh_ttl_s = refresh_ttl_s
        self._codes: dict[tuple[str, str], str] = {}  # (channel, code) → shop
        self._access: dict[tuple[str, str], SimGrant] = {}
        self._refresh: dict[tuple[str, str], SimGrant] = {}
        #: (channel, shop_id) whose refresh is refused (a revoked authorisation).
        self.refuse_refresh: set[tuple[str, str]] = set()
        self.refreshes = 0

    def _now(self) -> int:
        return int(self._clock())

    def authorize(self, channel: str, shop_id: str) -> str:
        """The seller of ``shop_id`` consents: a one-time code for the redirect."""
        code = secrets.token_hex(16)
        self._codes[(channel, code)] = shop_id
        return code

    def _issue(self, channel: str, shop_id: str) -> SimGrant:
        now = self._now()
        grant = SimGrant(
            channel,
            shop_id,
            secrets.token_hex(16),
            secrets.token_hex(16),
            now + self.access_ttl_s[channel],
            now + self.refresh_ttl_s,
        )
        self._access[(channel, grant.access_token)] = grant
        self._refresh[(channel, grant.refresh_token)] = grant
        return grant

    def exchange(self, channel: str, code: str, shop_id: str | None = None) -> SimGrant | None:
        """Tokens for a code (once); None if the code is unknown, used, or for another shop."""
        shop = self._codes.pop((channel, code), None)
        if shop is None or (shop_id is not None and shop_id != shop):
            return None
        return self._issue(channel, shop)

    def refresh(self, channel: str, refresh_token: str) -> tuple[SimGrant | None, str]:
        """A new pair for a live refresh token (the old pair stops working); else None and why."""
        old = self._refresh.get((channel, refresh_token))
        if old is None:
            return None, "unknown refresh_token"
        if old.refresh_expires_at <= self._now():
            return None, "refresh_token expired"
        if (channel, old.shop_id) in self.refuse_refresh:
            return None, "authorization revoked by the seller"
        del self._refresh[(channel, refresh_token)]
        self._access.pop((channel, old.access_token), None)
        self.refreshes += 1
        return self._issue(channel, old.shop_id), ""

    def shop_of(self, channel: str, access_token: str | None) -> tuple[str | None, str]:
        """The shop a live access token belongs to; else None and why."""
        grant = self._access.get((channel, access_token or ""))
        if grant is None:
            return None, "invalid access_token"
        if grant.access_expires_at <= self._now():
            return None, "access_token expired"
        return grant.shop_id, ""

    @staticmethod
    def cipher(shop_id: str) -> str:
        """TikTok Shop's ``shop_cipher`` of a shop (stable)."""
        return "ROW_" + hashlib.sha256(f"cipher:{shop_id}".encode()).hexdigest()[:24]
