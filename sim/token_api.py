"""The simulated token endpoints of Shopee v2 and TikTok Shop, and the simulator's stand-in for the seller's consent.

- ``POST /shopee/api/v2/auth/token/get`` and ``/shopee/api/v2/auth/access_token/get``: partner-level signed
  (``partner_id``, ``timestamp``, ``sign`` over partner_id + path + timestamp), JSON body with ``code`` or
  ``refresh_token``, ``shop_id`` and ``partner_id``; answer ``{access_token, refresh_token, expire_in, error,
  message, request_id}``.
- ``GET /tiktok_auth/api/v2/token/get`` (``app_key``, ``app_secret``, ``auth_code``, ``grant_type=authorized_code``)
  and ``/tiktok_auth/api/v2/token/refresh`` (``refresh_token``, ``grant_type=refresh_token``); answer ``{code: 0,
  data: {access_token, access_token_expire_in, refresh_token, refresh_token_expire_in, ...}}`` with the expiries as
  unix seconds. ``GET /tiktok_shop/authorization/202309/shops`` (signed, ``x-tts-access-token``) lists the shop.
- ``POST /_sim/authorize`` ``{"channel", "shop_id"}`` → ``{"code"}``: what the redirect after the seller's consent
  would carry (the simulator has no login page).
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sim.settings import SimSettings
from sim.signing import shopee_api_signature, signature_matches, tiktok_api_signature
from sim.tokens import SimGrant, SimTokens

__all__ = ["add_token_routes"]


def _shopee(status: int, error: str = "", message: str = "", **fields: Any) -> JSONResponse:
    body = {"error": error, "message": message, "request_id": uuid.uuid4().hex, **fields}
    return JSONResponse(body, status_code=status)


def _tiktok(status: int, code: int, message: str, data: Any = None) -> JSONResponse:
    body = {"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": data}
    return JSONResponse(body, status_code=status)


def _tiktok_data(grant: SimGrant) -> dict[str, Any]:
    return {
        "access_token": grant.access_token,
        "access_token_expire_in": grant.access_expires_at,
        "refresh_token": grant.refresh_token,
        "refresh_token_expire_in": grant.refresh_expires_at,
        "open_id": f"open-{grant.shop_id}",
        "seller_name": f"Toko {grant.shop_id}",
        "seller_base_region": "ID",
        "user_type": 0,
        "granted_scopes": ["seller.order.info", "seller.finance.info", "seller.authorization.info"],
    }


def add_token_routes(app: FastAPI, settings: SimSettings, tokens: SimTokens, fresh: Callable[[int], bool]) -> None:
    """Mount the token endpoints on the simulator's app."""

    async def shopee_token(request: Request, path: str) -> JSONResponse:
        query = request.query_params
        stamp = query.get("timestamp", "")
        if query.get("partner_id") != str(settings.shopee_partner_id) or not stamp.isdigit():
            return _shopee(403, "error_auth", "unknown partner_id or bad timestamp")
        if not fresh(int(stamp)):
            return _shopee(403, "error_auth", "timestamp expired")
        expected = shopee_api_signature(settings.shopee_partner_key, settings.shopee_partner_id, path, stamp)
        if not signature_matches(expected, query.get("sign")):
            return _shopee(403, "error_sign", "Wrong sign.")
        try:
            body = json.loads(await request.body())
            shop_id = str(int(body["shop_id"]))
            if int(body["partner_id"]) != settings.shopee_partner_id:
                return _shopee(400, "error_param", "partner_id in the body differs from the query")
        except (ValueError, KeyError, TypeError):
            return _shopee(400, "error_param", "body must be JSON with shop_id and partner_id")
        if path.endswith("/token/get"):
            grant = tokens.exchange("shopee", str(body.get("code", "")), shop_id)
            why = "Invalid code."
        else:
            grant, why = tokens.refresh("shopee", str(body.get("refresh_token", "")))
            if grant is not None and grant.shop_id != shop_id:
                grant, why = None, "refresh_token of another shop"
        if grant is None:
            return _shopee(403, "error_auth", why)
        return _shopee(
            200,
            access_token=grant.access_token,
            refresh_token=grant.refresh_token,
            expire_in=tokens.access_ttl_s["shopee"],
            shop_id=int(shop_id),
            partner_id=settings.shopee_partner_id,
        )

    @app.post("/shopee/api/v2/auth/token/get")
    async def shopee_token_get(request: Request) -> JSONResponse:
        return await shopee_token(request, "/api/v2/auth/token/get")

    @app.post("/shopee/api/v2/auth/access_token/get")
    async def shopee_access_token_get(request: Request) -> JSONResponse:
        return await shopee_token(request, "/api/v2/auth/access_token/get")

    def tiktok_app(request: Request) -> bool:
        query = request.query_params
        return query.get("app_key") == settings.tiktok_app_key and hmac.compare_digest(
            query.get("app_secret", "").encode(), settings.tiktok_app_secret.encode()
        )

    @app.get("/tiktok_auth/api/v2/token/get")
    async def tiktok_token_get(request: Request) -> JSONResponse:
        if not tiktok_app(request) or request.query_params.get("grant_type") != "authorized_code":
            return _tiktok(401, 105001, "Invalid credentials: app_key, app_secret or grant_type")
        grant = tokens.exchange("tiktok_shop", request.query_params.get("auth_code", ""))
        if grant is None:
            return _tiktok(400, 36004004, "Invalid auth_code")
        return _tiktok(200, 0, "success", _tiktok_data(grant))

    @app.get("/tiktok_auth/api/v2/token/refresh")
    async def tiktok_token_refresh(request: Request) -> JSONResponse:
        if not tiktok_app(request) or request.query_params.get("grant_type") != "refresh_token":
            return _tiktok(401, 105001, "Invalid credentials: app_key, app_secret or grant_type")
        grant, why = tokens.refresh("tiktok_shop", request.query_params.get("refresh_token", ""))
        if grant is None:
            return _tiktok(400, 36004005, f"Invalid refresh_token: {why}")
        return _tiktok(200, 0, "success", _tiktok_data(grant))

    @app.get("/tiktok_shop/authorization/202309/shops")
    async def tiktok_shops(request: Request) -> JSONResponse:
        query = dict(request.query_params)
        stamp = query.get("timestamp", "")
        if query.get("app_key") != settings.tiktok_app_key or not stamp.isdigit() or not fresh(int(stamp)):
            return _tiktok(401, 106011, "unknown app_key or expired timestamp")
        path = "/authorization/202309/shops"
        if not signature_matches(tiktok_api_signature(settings.tiktok_app_secret, path, query), query.get("sign")):
            return _tiktok(401, 106001, "Invalid credentials: sign")
        shop_id, why = tokens.shop_of("tiktok_shop", request.headers.get("x-tts-access-token"))
        if shop_id is None:
            return _tiktok(401, 105001, f"Invalid credentials: {why}")
        shop = {
            "id": shop_id,
            "name": f"Toko {shop_id}",
            "region": "ID",
            "seller_type": "LOCAL",
            "cipher": tokens.cipher(shop_id),
            "code": f"IDLC{shop_id[-6:]}",
        }
        return _tiktok(200, 0, "Success", {"shops": [shop]})

    @app.post("/_sim/authorize")
    async def authorize(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            channel, shop_id = str(body["channel"]), str(body["shop_id"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body must be {channel, shop_id}"}, status_code=400)
        if channel not in ("shopee", "tiktok_shop"):
            return JSONResponse({"error": f"{channel} does not authorise per shop"}, status_code=400)
        return JSONResponse({"code": tokens.authorize(channel, shop_id)})
