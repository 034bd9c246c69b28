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
Shopee API ``sign``        partner_key         f"{partner_id}{path}{timestamp}{shop_id}"
TikTok Shop API ``sign``   app_secret          app_secret + path + "app_key" + key + "timestamp" + ts
                                               + body + app_secret (body empty for GET)
Blibli API ``Signature``   api_secret          method + "\\n" + path + "\\n" + timestamp (ms)
=========================  ==================  =========================================================
"""

from __future__ import annotations

import hashlib
import hmac

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
    partner_key: str, partner_id: int | str, path: str, timestamp: int | str, shop_id: int | str
) -> str:
    """``sign`` query parameter of a shop-level Shopee API call."""
    return hmac_hex(partner_key, f"{partner_id}{path}{timestamp}{shop_id}".encode())


def tiktok_api_signature(app_secret: str, app_key: str, path: str, timestamp: int | str, body: bytes = b"") -> str:
    """``sign`` query parameter of a TikTok Shop API call."""
    message = f"{app_secret}{path}app_key{app_key}timestamp{timestamp}".encode() + body + app_secret.encode()
    return hmac_hex(app_secret, message)


def blibli_api_signature(api_secret: str, method: str, path: str, timestamp: int | str) -> str:
    """``Signature`` header of a Blibli API call."""
    return hmac_hex(api_secret, f"{method.upper()}\n{path}\n{timestamp}".encode())


def signature_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a received hex signature (case-insensitive) with the expected one."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())
