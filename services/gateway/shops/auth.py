"""The channels' token endpoints: authorisation link, code exchange and refresh (Shopee v2, TikTok Shop).

- **Shopee** (open.shopee.com, "Authorization and Authentication"): the seller opens
  ``/api/v2/shop/auth_partner?partner_id&timestamp&sign&redirect`` and Shopee redirects to ``redirect`` with
  ``?code&shop_id``; ``POST /api/v2/auth/token/get`` ``{code, shop_id, partner_id}`` and ``POST
  /api/v2/auth/access_token/get`` ``{refresh_token, shop_id, partner_id}`` (partner-level sign) answer
  ``{access_token, refresh_token, expire_in (seconds), error, message}``. The access token lives 4 hours, the
  refresh token 30 days and is replaced at each refresh (use the newest).
- **TikTok Shop** (partner.tiktokshop.com, "Authorization overview"): the seller opens
  ``services.tiktokshop.com/open/authorize?service_id&state`` and is redirected with ``?code``; ``GET
  auth.tiktok-shops.com/api/v2/token/get?app_key&app_secret&auth_code&grant_type=authorized_code`` and
  ``/api/v2/token/refresh?...&refresh_token&grant_type=refresh_token`` answer ``{code: 0, data: {access_token,
  access_token_expire_in, refresh_token, refresh_token_expire_in, ...}}`` where the ``*_expire_in`` are unix
  seconds of expiry (not durations). The shop's ``cipher`` comes from ``GET /authorization/202309/shops`` (signed).

No token value is ever put in an exception message or a log line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlencode

import httpx

from services.gateway.clients.base import MarketplaceApiError
from services.gateway.clients.http import ChannelClient, JsonApi, build_http_client
from services.gateway.clients.parsing import get_list, get_mapping, get_str, objects
from services.gateway.clients.shopee import shop_number, shopee_error
from services.gateway.clients.signing import shopee_sign, tiktok_sign
from services.gateway.clients.tiktok_shop import tiktok_error
from services.gateway.values import parse_count

__all__ = ["ShopeeAuth", "TikTokAuth", "TokenApi", "TokenGrant"]

SHOPEE_AUTHORIZE_PATH = "/api/v2/shop/auth_partner"
SHOPEE_TOKEN_PATH = "/api/v2/auth/token/get"  # noqa: S105 - a path
SHOPEE_REFRESH_PATH = "/api/v2/auth/access_token/get"
SHOPEE_REFRESH_VALIDITY = timedelta(days=30)  # published; the answer does not carry it
TIKTOK_TOKEN_PATH = "/api/v2/token/get"  # noqa: S105 - a path
TIKTOK_REFRESH_PATH = "/api/v2/token/refresh"
TIKTOK_SHOPS_PATH = "/authorization/202309/shops"


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a code exchange or a refresh gave for one shop."""

    channel: str
    shop_id: str
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime | None = None
    shop_cipher: str | None = None
    shop_name: str | None = None

    def __repr__(self) -> str:  # never print a token
        return (
            f"TokenGrant(channel={self.channel!r}, shop_id={self.shop_id!r}, "
            f"access_expires_at={self.access_expires_at.isoformat()!r}, access_token='***', refresh_token='***')"
        )


class TokenApi(Protocol):
    """One channel's token endpoints."""

    channel: str

    def authorize_url(self, state: str) -> str:
        """Where the seller authorises the app."""
        ...

    async def exchange(self, code: str, shop_id: str | None) -> TokenGrant:
        """The tokens for an authorisation code."""
        ...

    async def refresh(self, refresh_token: str, shop_id: str, shop_cipher: str | None) -> TokenGrant:
        """New tokens for a refresh token."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


def _at(clock: Callable[[], float], seconds: int) -> datetime:
    return datetime.fromtimestamp(int(clock()) + seconds, UTC)


class ShopeeAuth(ChannelClient):
    """Shopee's authorisation link and token endpoints (partner-level signed by ``partner``: id and key)."""

    channel = "shopee"

    def __init__(
        self,
        base_url: str,
        partner: tuple[int, str],
        redirect_url: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(base_url, shopee_error, timeout_s=timeout_s, transport=transport, clock=clock)
        self._base_url = base_url.rstrip("/")
        self._partner_id, self._partner_key = partner
        self._redirect_url = redirect_url

    def _signed(self, path: str) -> dict[str, str | int]:
        timestamp = int(self._clock())
        return {
            "partner_id": self._partner_id,
            "timestamp": timestamp,
            "sign": shopee_sign(self._partner_key, self._partner_id, path, timestamp),
        }

    def authorize_url(self, state: str) -> str:
        """The shop authorisation link (valid 5 minutes); ``state`` rides along in the redirect URL."""
        redirect = self._redirect_url + ("&" if "?" in self._redirect_url else "?") + urlencode({"state": state})
        query = {**self._signed(SHOPEE_AUTHORIZE_PATH), "redirect": redirect}
        return f"{self._base_url}{SHOPEE_AUTHORIZE_PATH}?{urlencode(query)}"

    async def _post(self, path: str, shop_id: str, payload: dict[str, object]) -> TokenGrant:
        body = json.dumps({**payload, "partner_id": self._partner_id}, separators=(",", ":")).encode()
        answer = await self._api.request(
            "POST", path, params=self._signed(path), headers={"Content-Type": "application/json"}, content=body
        )
        where = f"shopee {path}"
        seconds = parse_count(answer.get("expire_in"), f"{where}.expire_in")
        return TokenGrant(
            channel=self.channel,
            shop_id=shop_id,
            access_token=get_str(answer, "access_token", where),
            refresh_token=get_str(answer, "refresh_token", where),
            access_expires_at=_at(self._clock, seconds),
            refresh_expires_at=_at(self._clock, int(SHOPEE_REFRESH_VALIDITY.total_seconds())),
        )

    async def exchange(self, code: str, shop_id: str | None) -> TokenGrant:
        """``/api/v2/auth/token/get`` for the ``code`` and ``shop_id`` of the redirect."""
        if shop_id is None:
            raise MarketplaceApiError("shopee: the code exchange needs the shop_id of the redirect")
        return await self._post(SHOPEE_TOKEN_PATH, shop_id, {"code": code, "shop_id": shop_number(shop_id)})

    async def refresh(self, refresh_token: str, shop_id: str, shop_cipher: str | None = None) -> TokenGrant:
        """``/api/v2/auth/access_token/get``: a new access token and a new refresh token."""
        payload: dict[str, object] = {"refresh_token": refresh_token, "shop_id": shop_number(shop_id)}
        return await self._post(SHOPEE_REFRESH_PATH, shop_id, payload)


class TikTokAuth(ChannelClient):
    """TikTok Shop's authorisation link, token endpoints (auth host) and authorised shops (API host)."""

    channel = "tiktok_shop"

    def __init__(
        self,
        auth_url: str,
        api_url: str,
        authorize_url: str,
        app_key: str,
        app_secret: str,
        service_id: str,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(auth_url, tiktok_error, timeout_s=timeout_s, transport=transport, clock=clock)
        self._shops_api = JsonApi(self.channel, build_http_client(api_url, timeout_s, transport), tiktok_error)
        self._authorize = authorize_url.rstrip("/")
        self._app_key = app_key
        self._app_secret = app_secret
        self._service_id = service_id

    def authorize_url(self, state: str) -> str:
        """The seller's authorisation link of this app's service."""
        return f"{self._authorize}/open/authorize?{urlencode({'service_id': self._service_id, 'state': state})}"

    async def _token(self, path: str, extra: Mapping[str, str]) -> Mapping[str, object]:
        params = {"app_key": self._app_key, "app_secret": self._app_secret, **extra}
        return get_mapping(await self._api.request("GET", path, params=params), "data", f"tiktok_shop {path}")

    def _grant(self, data: Mapping[str, object], shop_id: str, cipher: str | None, name: str | None) -> TokenGrant:
        where = "tiktok_shop token"
        refresh_at = data.get("refresh_token_expire_in")
        return TokenGrant(
            channel=self.channel,
            shop_id=shop_id,
            access_token=get_str(data, "access_token", where),
            refresh_token=get_str(data, "refresh_token", where),
            access_expires_at=datetime.fromtimestamp(
                parse_count(data.get("access_token_expire_in"), f"{where}.access_token_expire_in"), UTC
            ),
            refresh_expires_at=None
            if refresh_at is None
            else datetime.fromtimestamp(parse_count(refresh_at, f"{where}.refresh_token_expire_in"), UTC),
            shop_cipher=cipher,
            shop_name=name,
        )

    async def _shops(self, access_token: str) -> list[Mapping[str, object]]:
        query: dict[str, str | int] = {"app_key": self._app_key, "timestamp": int(self._clock())}
        query["sign"] = tiktok_sign(self._app_secret, TIKTOK_SHOPS_PATH, query)
        answer = await self._shops_api.request(
            "GET", TIKTOK_SHOPS_PATH, params=query, headers={"x-tts-access-token": access_token}
        )
        where = f"tiktok_shop {TIKTOK_SHOPS_PATH}"
        return objects(get_list(get_mapping(answer, "data", where), "shops", where), where)

    async def exchange(self, code: str, shop_id: str | None) -> TokenGrant:
        """Token for ``code``, then the shop's id, cipher and name from the authorised shops."""
        data = await self._token(TIKTOK_TOKEN_PATH, {"auth_code": code, "grant_type": "authorized_code"})
        probe = self._grant(data, shop_id or "?", None, None)
        shops = await self._shops(probe.access_token)
        chosen = [s for s in shops if shop_id is None or get_str(s, "id", "tiktok_shop shop") == shop_id]
        if len(chosen) != 1:
            ids = ", ".join(str(s.get("id")) for s in shops)
            raise MarketplaceApiError(f"tiktok_shop: name one shop with --shop-id (authorised shops: {ids})")
        shop = chosen[0]
        name = shop.get("name")
        return self._grant(
            data,
            get_str(shop, "id", "tiktok_shop shop"),
            get_str(shop, "cipher", "tiktok_shop shop"),
            name if isinstance(name, str) else None,
        )

    async def refresh(self, refresh_token: str, shop_id: str, shop_cipher: str | None = None) -> TokenGrant:
        """``/api/v2/token/refresh``; the shop's cipher does not change."""
        data = await self._token(TIKTOK_REFRESH_PATH, {"refresh_token": refresh_token, "grant_type": "refresh_token"})
        return self._grant(data, shop_id, shop_cipher, None)

    async def aclose(self) -> None:
        """Close both connection pools."""
        await super().aclose()
        await self._shops_api.aclose()
