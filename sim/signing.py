"""Signatures of the channel contract, for the simulator side (pure functions, no I/O).

All are lowercase hex HMAC-SHA256. Webhooks are signed over the raw body bytes; API requests over the
strings listed below. This module is deliberately independent of the production clients in
``services/gateway/clients/``: the tests check both against values computed a third way.

=========================  ==================  =========================================================
what                       key                 message
=========================  ==================  =========================================================
Tokopedia webhook          webhook_secret      raw body (header ``Authorization-Hmac``)
TikTok Shop webhook        app_secret          app_key + raw body (header ``Authorization``)
Shopee webhook             partner_key         callback_url + "|" + raw body (header ``Authorization``)
Shopee API ``sign``        partner_key         f"{partner_id}{path}{timestamp}" (partner level: token endpoints)
                                               + f"{access_token}{shop_id}" (shop level)
TikTok Shop API ``sign``   app_secret          app_secret + path + key+value of every query parameter but
                                               sign and access_token, sorted by key + body + app_secret
Blibli API ``Signature``   signature key       Base64 HMAC of method \\n md5(body) or "" \\n content type
                                               \\n "EEE MMM dd HH:mm:ss WIB yyyy" (Jakarta) \\n signed path
=========================  ==================  =========================================================

Blibli signs the path after ``/proxy`` with ``/mta`` written ``/mtaapi`` (seller-api.blibli.com raw strings and
Blibli's PHP client); the simulator serves Blibli under ``/blibli/proxy/...`` and checks exactly that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

__all__ = [
    "blibli_api_signature",
    "hmac_hex",
    "shopee_api_signature",
    "shopee_webhook_signature",
    "signature_matches",
    "tiktok_api_signature",
    "tiktok_webhook_signature",
    "tokopedia_webhook_signature",
]


def hmac_hex(key: str, message: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` under ``key`` (UTF-8)."""
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def tokopedia_webhook_signature(webhook_secret: str, body: bytes) -> str:
    """``Authorization-Hmac`` header of a Tokopedia webhook."""
    return hmac_hex(webhook_secret, body)


def tiktok_webhook_signature(app_key: str, app_secret: str, body: bytes) -> str:
    """``Authorization`` header of a TikTok Shop webhook."""
    return hmac_hex(app_secret, app_key.encode() + body)


def shopee_webhook_signature(partner_key: str, callback_url: str, body: bytes) -> str:
    """``Authorization`` header of a Shopee push (``callback_url`` exactly as configured for the shop)."""
    return hmac_hex(partner_key, callback_url.encode() + b"|" + body)


def shopee_api_signature(
    partner_key: str,
    partner_id: int | str,
    path: str,
    timestamp: int | str,
    access_token: str | None = None,
    shop_id: int | str | None = None,
) -> str:
    """``sign`` of a Shopee v2 call: partner level without ``access_token``, shop level with it and ``shop_id``."""
    tail = "" if access_token is None else f"{access_token}{shop_id}"
    return hmac_hex(partner_key, f"{partner_id}{path}{timestamp}{tail}".encode())


def tiktok_api_signature(app_secret: str, path: str, query: Mapping[str, str], body: bytes = b"") -> str:
    """``sign`` of a TikTok Shop 202309 call over its query (``sign``/``access_token`` left out) and raw body."""
    signed = "".join(k + query[k] for k in sorted(query) if k not in {"sign", "access_token"})
    return hmac_hex(app_secret, (app_secret + path + signed).encode() + body + app_secret.encode())


def blibli_api_signature(
    signature_key: str, method: str, body: bytes, content_type: str, millis: int | str, signed_path: str
) -> str:
    """``Signature`` header (Base64) of a Blibli seller-API call."""
    escaped = body.decode().replace("\r", "\\r").replace("\n", "\\n")
    body_md5 = hashlib.md5(escaped.encode(), usedforsecurity=False).hexdigest() if escaped else ""
    jakarta = datetime.fromtimestamp(int(millis) / 1000, UTC) + timedelta(hours=7)
    date = jakarta.strftime("%a %b %d %H:%M:%S") + " WIB " + str(jakarta.year)
    raw = f"{method.upper()}\n{body_md5}\n{content_type}\n{date}\n{signed_path}"
    digest = hmac.new(signature_key.encode(), raw.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_matches(expected: str, given: str | None, *, exact: bool = False) -> bool:
    """Constant-time comparison of a received signature with the expected one (hex: case-insensitive; ``exact``
    for Base64)."""
    if not given:
        return False
    received = given.strip() if exact else given.strip().lower()
    return hmac.compare_digest(expected.encode(), received.encode())
