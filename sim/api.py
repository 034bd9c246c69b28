"""Simulated seller APIs of Shopee, TikTok Shop, Tokopedia and Blibli over :class:`sim.state.SimState`.

Mounted under ``/shopee``, ``/tiktok_shop``, ``/tokopedia`` and ``/blibli`` (the default client base URLs
are ``http://127.0.0.1:8090/<channel>``); the token endpoints are in :mod:`sim.token_api`. Every request is
authenticated the way the channel publishes it (see :mod:`sim.signing`): Shopee shop-level signs with the shop's
``access_token``, TikTok Shop signs every query parameter and names the shop by ``shop_cipher`` with the token in
``x-tts-access-token``, Blibli wants Basic auth, ``Api-Seller-Key`` and a ``Signature``. A request signed any other
way, a bad key or token, another shop's token, or a timestamp more than ``sim_max_clock_skew_s`` away from now is
answered with the channel's own error shape. Besides the contract's endpoints the simulator
serves what backstop polling needs: Shopee ``get_order_list``, TikTok Shop order search, Tokopedia's order
list and Blibli ``orderDetail``. Windows are half-open: ``from ≤ update_time < to``.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.contracts.channels import Channel
from sim import render
from sim.returns_api import add_return_routes
from sim.settings import SimSettings
from sim.signing import (
    blibli_api_signature,
    shopee_api_signature,
    signature_matches,
    tiktok_api_signature,
)
from sim.state import SimOrder, SimState
from sim.statements_api import add_statement_routes
from sim.token_api import add_token_routes
from sim.tokens import SimTokens

__all__ = ["ChannelError", "create_app"]

Json = dict[str, Any]


class ChannelError(Exception):
    """An answer in the channel's error shape (raised by handlers, rendered by the app)."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def _request_id() -> str:
    return uuid.uuid4().hex


def shopee_error(status: int, error: str, message: str) -> ChannelError:
    """Shopee: ``{"error": code, "message": ..., "request_id": ...}``."""
    return ChannelError(status, {"error": error, "message": message, "request_id": _request_id()})


def tiktok_error(status: int, code: int, message: str) -> ChannelError:
    """TikTok Shop: ``{"code": non-zero, "message": ..., "data": null}``."""
    return ChannelError(status, {"code": code, "message": message, "request_id": _request_id(), "data": None})


def tokopedia_error(status: int, code: str, reason: str) -> ChannelError:
    """Tokopedia: ``{"header": {"error_code": ..., "reason": ...}, "data": null}``."""
    header = {"process_time": 0, "messages": "Your request has failed", "reason": reason, "error_code": code}
    return ChannelError(status, {"header": header, "data": None})


def blibli_error(status: int, code: str, message: str) -> ChannelError:
    """Blibli: ``{"success": false, "errorCode": ..., "errorMessage": ..., "content": null}``."""
    return ChannelError(status, {"success": False, "errorCode": code, "errorMessage": message, "content": None})


def _int_param(request: Request, name: str, fail: Callable[[str], ChannelError], default: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if default is not None:
            return default
        raise fail(f"missing parameter {name}")
    if not raw.lstrip("-").isdigit():
        raise fail(f"parameter {name} must be an integer, got {raw!r}")
    return int(raw)


def _str_param(request: Request, name: str, fail: Callable[[str], ChannelError]) -> str:
    raw = request.query_params.get(name)
    if not raw:
        raise fail(f"missing parameter {name}")
    return raw


def _page(items: Sequence[SimOrder], offset: int, size: int) -> tuple[Sequence[SimOrder], bool]:
    return items[offset : offset + size], offset + size < len(items)


def create_app(
    state: SimState, settings: SimSettings, clock: Callable[[], float] = time.time, tokens: SimTokens | None = None
) -> FastAPI:
    """The simulator's FastAPI app: the four channels' seller APIs over ``state`` (``app.state.tokens``: the
    issued shop tokens)."""
    app = FastAPI(title="Karya marketplace simulator", docs_url="/_sim/docs", openapi_url="/_sim/openapi.json")
    if tokens is None:
        tokens = SimTokens(
            clock,
            access_ttl_s={"shopee": settings.sim_shopee_access_ttl_s, "tiktok_shop": settings.sim_tiktok_access_ttl_s},
            refresh_ttl_s=settings.sim_refresh_ttl_s,
        )
    app.state.tokens = tokens
    down: set[str] = set()
    app.state.down = down  # channels whose seller API answers 503 to everything (an outage, for tests and demos)

    @app.middleware("http")
    async def _outage(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.strip("/").split("/", 1)[0] in down:
            return JSONResponse({"error": "service_unavailable", "message": "simulated outage"}, status_code=503)
        return await call_next(request)

    @app.post("/_sim/outage/{channel}")
    async def _set_outage(channel: str, on: bool = True) -> Json:
        """Start (``?on=true``) or end (``?on=false``) an outage of one channel's seller API."""
        (down.add if on else down.discard)(channel)
        return {"down": sorted(down)}

    @app.exception_handler(ChannelError)
    async def _channel_error(request: Request, exc: ChannelError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    def fresh(timestamp: int, unit: int = 1) -> bool:
        return abs(clock() - timestamp / unit) <= settings.sim_max_clock_skew_s

    # ------------------------------------------------------------ Shopee

    def shopee_auth(request: Request, path: str) -> str:
        def bad(message: str) -> ChannelError:
            return shopee_error(400, "error_param", message)

        partner_id = _int_param(request, "partner_id", bad)
        timestamp = _int_param(request, "timestamp", bad)
        shop_id = _str_param(request, "shop_id", bad)
        access_token = _str_param(request, "access_token", bad)
        if partner_id != settings.shopee_partner_id:
            raise shopee_error(403, "error_auth", f"unknown partner_id {partner_id}")
        if not fresh(timestamp):
            raise shopee_error(403, "error_auth", "timestamp expired")
        expected = shopee_api_signature(settings.shopee_partner_key, partner_id, path, timestamp, access_token, shop_id)
        if not signature_matches(expected, request.query_params.get("sign")):
            raise shopee_error(403, "error_sign", "Wrong sign.")
        owner, why = tokens.shop_of("shopee", access_token)
        if owner != shop_id:
            raise shopee_error(403, "error_auth", f"Invalid access_token: {why or 'another shop'}.")
        return shop_id

    def shopee_ok(response: Json) -> Json:
        return {"error": "", "message": "", "request_id": _request_id(), "response": response}

    @app.get("/shopee/api/v2/order/get_order_detail")
    async def shopee_order_detail(request: Request) -> Json:
        shop_id = shopee_auth(request, "/api/v2/order/get_order_detail")
        raw = _str_param(request, "order_sn_list", lambda m: shopee_error(400, "error_param", m))
        order_sns = [sn for sn in raw.split(",") if sn]
        if len(order_sns) > 50:
            raise shopee_error(400, "error_param", "order_sn_list takes at most 50 orders")
        found = [o for sn in order_sns if (o := state.find(Channel.SHOPEE, shop_id, sn)) is not None]
        if not found:  # Shopee reports business errors inside an HTTP 200 (uncertain for this one)
            raise shopee_error(200, "error_not_found", f"order not found: {raw}")
        return shopee_ok({"order_list": [render.shopee_order(o) for o in found]})

    @app.get("/shopee/api/v2/payment/get_escrow_detail")
    async def shopee_escrow_detail(request: Request) -> Json:
        shop_id = shopee_auth(request, "/api/v2/payment/get_escrow_detail")
        order_sn = _str_param(request, "order_sn", lambda m: shopee_error(400, "error_param", m))
        order = state.find(Channel.SHOPEE, shop_id, order_sn)
        if order is None:
            raise shopee_error(200, "error_not_found", f"order not found: {order_sn}")
        return shopee_ok(render.shopee_escrow(order))

    @app.get("/shopee/api/v2/order/get_order_list")
    async def shopee_order_list(request: Request) -> Json:
        shop_id = shopee_auth(request, "/api/v2/order/get_order_list")

        def bad(message: str) -> ChannelError:
            return shopee_error(400, "error_param", message)

        if request.query_params.get("time_range_field", "update_time") != "update_time":
            raise bad("only time_range_field=update_time is simulated")
        start, end = _int_param(request, "time_from", bad), _int_param(request, "time_to", bad)
        if end - start > 15 * 86_400:
            raise bad("time range longer than 15 days")
        size = min(_int_param(request, "page_size", bad, 20), 100)
        cursor = request.query_params.get("cursor") or "0"
        offset = int(cursor) if cursor.isdigit() else 0
        orders = state.updated_between(Channel.SHOPEE, shop_id, start * 1000, end * 1000)
        page, more = _page(orders, offset, size)
        return shopee_ok(
            {
                "more": more,
                "next_cursor": str(offset + size) if more else "",
                "order_list": [{"order_sn": o.order_id, "order_status": o.status} for o in page],
            }
        )

    # ------------------------------------------------------------ TikTok Shop

    async def tiktok_auth(request: Request, path: str) -> str:
        def bad(message: str) -> ChannelError:
            return tiktok_error(400, 36009004, message)

        query = dict(request.query_params)
        app_key = _str_param(request, "app_key", bad)
        timestamp = _int_param(request, "timestamp", bad)
        cipher = _str_param(request, "shop_cipher", bad)
        if app_key != settings.tiktok_app_key:
            raise tiktok_error(401, 106011, f"unknown app_key {app_key!r}")
        if not fresh(timestamp):
            raise tiktok_error(401, 106002, "timestamp expired")
        expected = tiktok_api_signature(settings.tiktok_app_secret, path, query, await request.body())
        if not signature_matches(expected, query.get("sign")):
            raise tiktok_error(401, 106001, "Invalid credentials: sign")
        shop_id, why = tokens.shop_of("tiktok_shop", request.headers.get("x-tts-access-token"))
        if shop_id is None:
            raise tiktok_error(401, 105002 if "expired" in why else 105001, f"Invalid credentials: {why}")
        if tokens.cipher(shop_id) != cipher:
            raise tiktok_error(403, 106020, "shop_cipher does not belong to this access token")
        return shop_id

    def tiktok_ok(data: Json) -> Json:
        return {"code": 0, "message": "Success", "request_id": _request_id(), "data": data}

    @app.get("/tiktok_shop/order/202309/orders")
    async def tiktok_orders(request: Request) -> Json:
        shop_id = await tiktok_auth(request, "/order/202309/orders")
        ids = _str_param(request, "ids", lambda m: tiktok_error(400, 36009004, m)).split(",")
        found = [o for i in ids if i and (o := state.find(Channel.TIKTOK_SHOP, shop_id, i)) is not None]
        # Ids the shop does not have are left out of a success answer (code 0, HTTP 200), not an error (uncertain).
        return tiktok_ok({"orders": [render.tiktok_order(o) for o in found]})

    @app.get("/tiktok_shop/finance/202309/orders/{order_id}/statement_transactions")
    async def tiktok_statement(order_id: str, request: Request) -> Json:
        shop_id = await tiktok_auth(request, f"/finance/202309/orders/{order_id}/statement_transactions")
        order = state.find(Channel.TIKTOK_SHOP, shop_id, order_id)
        if order is None:
            raise tiktok_error(404, 21011001, "order not found")
        return tiktok_ok({"statement_transactions": render.tiktok_statement(order)})

    @app.post("/tiktok_shop/order/202309/orders/search")
    async def tiktok_search(request: Request) -> Json:
        shop_id = await tiktok_auth(request, "/order/202309/orders/search")
        try:
            query = json.loads(await request.body() or b"{}")
            start, end = int(query["update_time_ge"]), int(query["update_time_lt"])
        except (ValueError, KeyError, TypeError) as exc:
            raise tiktok_error(400, 36009004, f"bad search body: {exc}") from None
        size = min(_int_param(request, "page_size", lambda m: tiktok_error(400, 36009004, m), 20), 100)
        token = request.query_params.get("page_token") or "0"
        offset = int(token) if token.isdigit() else 0
        orders = state.updated_between(Channel.TIKTOK_SHOP, shop_id, start * 1000, end * 1000)
        page, more = _page(orders, offset, size)
        return tiktok_ok(
            {
                "orders": [render.tiktok_order(o) for o in page],
                "next_page_token": str(offset + size) if more else "",
                "total_count": len(orders),
            }
        )

    add_return_routes(
        app,
        state,
        (shopee_auth, lambda m: shopee_error(400, "error_param", m), shopee_ok),
        (tiktok_auth, lambda m: tiktok_error(400, 36009004, m), tiktok_ok),
    )
    add_statement_routes(app, state, (tiktok_auth, lambda m: tiktok_error(400, 36009004, m), tiktok_ok))

    # ------------------------------------------------------------ Tokopedia

    def tokopedia_auth(request: Request, fs_id: int) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), settings.tokopedia_api_token.encode()):
            raise tokopedia_error(401, "UNAUTHORIZED", "invalid or missing bearer token")
        if fs_id != settings.tokopedia_fs_id:
            raise tokopedia_error(403, "FORBIDDEN", f"fs_id {fs_id} does not belong to this token")

    def tokopedia_order_or_404(request: Request, order_id: str) -> SimOrder:
        order = state.get(Channel.TOKOPEDIA, order_id)
        shop = request.query_params.get("shop_id")
        if order is None or (shop and order.shop_id != shop):
            raise tokopedia_error(404, "ORDER_NOT_FOUND", f"order {order_id} not found")
        return order

    @app.get("/tokopedia/v2/fs/{fs_id}/order")
    async def tokopedia_single_order(fs_id: int, request: Request) -> Json:
        tokopedia_auth(request, fs_id)
        order_id = _str_param(request, "order_id", lambda m: tokopedia_error(400, "BAD_REQUEST", m))
        order = tokopedia_order_or_404(request, order_id)
        return {
            "header": {"process_time": 0, "messages": "Your request has been processed successfully"},
            "data": render.tokopedia_order(order, settings.tokopedia_fs_id),
        }

    @app.get("/tokopedia/v1/fs/{fs_id}/order/{order_id}/income")
    async def tokopedia_income(fs_id: int, order_id: str, request: Request) -> Json:
        tokopedia_auth(request, fs_id)
        order = tokopedia_order_or_404(request, order_id)
        return {"header": {"process_time": 0, "messages": "ok"}, "data": render.tokopedia_income(order)}

    @app.get("/tokopedia/v2/order/list")
    async def tokopedia_order_list(request: Request) -> Json:
        def bad(message: str) -> ChannelError:
            return tokopedia_error(400, "BAD_REQUEST", message)

        tokopedia_auth(request, _int_param(request, "fs_id", bad))
        shop_id = _str_param(request, "shop_id", bad)
        start, end = _int_param(request, "from_date", bad), _int_param(request, "to_date", bad)
        page_no, per_page = (
            _int_param(request, "page", bad, 1),
            min(_int_param(request, "per_page", bad, 50), 100),
        )
        if page_no < 1:
            raise bad("page starts at 1")
        orders = state.updated_between(Channel.TOKOPEDIA, shop_id, start * 1000, end * 1000)
        page, _ = _page(orders, (page_no - 1) * per_page, per_page)
        data = [render.tokopedia_order(o, settings.tokopedia_fs_id) for o in page]
        return {"header": {"process_time": 0, "messages": "ok"}, "data": data}

    # ------------------------------------------------------------ Blibli

    basic = (
        "Basic "
        + base64.b64encode(f"{settings.blibli_api_client_id}:{settings.blibli_api_client_key}".encode()).decode()
    )

    def blibli_auth(request: Request) -> str:
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), basic.encode()):
            raise blibli_error(401, "ERR-PA401002", "Request is not authorized, API client is invalid")
        if request.headers.get("api-seller-key") != settings.blibli_api_key:
            raise blibli_error(401, "ERR-PA401001", "Request is not authorized, Api-Seller-Key is invalid")
        stamp = request.headers.get("signature-time", "")
        if not stamp.isdigit() or not fresh(int(stamp), 1000):
            raise blibli_error(401, "ERR-PA401003", "missing or expired Signature-Time")
        signed_path = request.url.path.split("/proxy", 1)[1].replace("/mta", "/mtaapi")
        expected = blibli_api_signature(settings.blibli_api_secret, request.method, b"", "", stamp, signed_path)
        if not signature_matches(expected, request.headers.get("signature"), exact=True):
            raise blibli_error(401, "ERR-PA401004", "invalid Signature")
        for name in ("requestId", "channelId", "storeId"):
            _str_param(request, name, lambda m: blibli_error(400, "BAD_REQUEST", m))
        return _str_param(request, "storeCode", lambda m: blibli_error(400, "BAD_REQUEST", m))

    @app.get("/blibli/proxy/mta/api/businesspartner/v1/order/orderList")
    async def blibli_order_list(request: Request) -> Json:
        store = blibli_auth(request)

        def bad(message: str) -> ChannelError:
            return blibli_error(400, "BAD_REQUEST", message)

        start, end = _int_param(request, "startDate", bad), _int_param(request, "endDate", bad)
        page_no, size = _int_param(request, "page", bad, 0), min(_int_param(request, "size", bad, 50), 100)
        rows = [row for o in state.updated_between(Channel.BLIBLI, store, start, end) for row in render.blibli_rows(o)]
        content = rows[page_no * size : (page_no + 1) * size]
        meta = {"page": page_no, "size": size, "totalRecords": len(rows)}
        return {"success": True, "errorMessage": None, "content": content, "pageMetaData": meta}

    @app.get("/blibli/proxy/mta/api/businesspartner/v1/order/orderDetail")
    async def blibli_order_detail(request: Request) -> Json:
        store = blibli_auth(request)
        order_no = _str_param(request, "orderNo", lambda m: blibli_error(400, "BAD_REQUEST", m))
        order = state.find(Channel.BLIBLI, store, order_no)
        if order is None:
            raise blibli_error(404, "NOT_FOUND", f"order {order_no} not found")
        return {"success": True, "errorMessage": None, "content": render.blibli_rows(order)}

    add_token_routes(app, settings, tokens, fresh)
    return app
