"""Request signing of the seller APIs, as each marketplace publishes it (pure functions, no I/O).

Sources (docs/gateway.md, "Seller APIs", cites them with URLs):

- **Shopee Open Platform v2** (open.shopee.com, "Authorization and Authentication"): ``sign`` = lowercase hex
  HMAC-SHA256(partner_key, partner_id + api_path + timestamp) for partner-level calls (the ``/api/v2/auth/*`` token
  endpoints, the authorisation link), + access_token + shop_id for shop-level calls. ``api_path`` is the path only
  (``/api/v2/order/get_order_detail``), without host or query.
- **TikTok Shop Partner API 202309** (partner.tiktokshop.com, "Sign your API request"): ``sign`` = lowercase hex
  HMAC-SHA256(app_secret, app_secret + api_path + every query parameter but ``sign`` and ``access_token`` as
  key + value, sorted by key + body (unless multipart) + app_secret).
- **Blibli Seller API** (seller-api.blibli.com "Signature" and Blibli's own PHP client,
  github.com/bliblidotcom/seller-api-client-php ``GenerateSignature.php``): ``Signature`` = Base64 HMAC-SHA256(
  signature_key, METHOD + "\\n" + MD5 hex of the body (CR/LF escaped; empty body → empty) + "\\n" + content type
  + "\\n" + date as ``EEE MMM dd HH:mm:ss WIB yyyy`` in Asia/Jakarta + "\\n" + signed path), where the signed path is
  the request path after ``/proxy`` with ``/mta`` written ``/mtaapi`` (the raw strings of the docs:
  ``/mtaapi/api/businesspartner/v1/...``, ``/seller/v1/...``) and no query. ``Signature-Time`` carries the same
  instant in unix milliseconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

__all__ = [
    "blibli_signature",
    "blibli_signature_date",
    "blibli_signed_path",
    "shopee_sign",
    "tiktok_sign",
]

_WIB = timezone(timedelta(hours=7), "WIB")  # Asia/Jakarta: UTC+7, no daylight saving since 1964


def _hmac(key: str, message: bytes) -> bytes:
    return hmac.new(key.encode(), message, hashlib.sha256).digest()


def shopee_sign(
    partner_key: str,
    partner_id: int,
    path: str,
    timestamp: int,
    *,
    access_token: str | None = None,
    shop_id: int | None = None,
) -> str:
    """Shopee v2 ``sign``: partner-level without ``access_token``/``shop_id``, shop-level with both."""
    if (access_token is None) != (shop_id is None):
        raise ValueError("a shop-level Shopee sign needs both access_token and shop_id")
    base = f"{partner_id}{path}{timestamp}"
    if access_token is not None:
        base += f"{access_token}{shop_id}"
    return _hmac(partner_key, base.encode()).hex()


def tiktok_sign(app_secret: str, path: str, params: Mapping[str, str | int], body: bytes = b"") -> str:
    """TikTok Shop 202309 ``sign`` over the query ``params`` (``sign``/``access_token`` are skipped) and ``body``."""
    pairs = "".join(f"{key}{params[key]}" for key in sorted(params) if key not in ("sign", "access_token"))
    message = app_secret.encode() + path.encode() + pairs.encode() + body + app_secret.encode()
    return _hmac(app_secret, message).hex()


def blibli_signed_path(request_path: str) -> str:
    """The path Blibli signs for a request path: the part after ``/proxy``, ``/mta`` → ``/mtaapi``, no query."""
    path = request_path.split("?", 1)[0]
    if "/proxy" in path:
        path = path.split("/proxy", 1)[1]
    return path.replace("/mta", "/mtaapi")


def blibli_signature_date(millis: int) -> str:
    """``Tue May 12 16:28:52 WIB 2020``: the instant in Asia/Jakarta, as Blibli's raw signature string has it."""
    moment = datetime.fromtimestamp(millis / 1000, UTC).astimezone(_WIB)
    return moment.strftime("%a %b %d %H:%M:%S WIB %Y")


def blibli_signature(
    signature_key: str, method: str, body: bytes, content_type: str, millis: int, request_path: str
) -> str:
    """Blibli ``Signature`` header (Base64) of one request."""
    text = body.decode().replace("\r", "\\r").replace("\n", "\\n")
    digest = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() if text else ""
    raw = "\n".join(
        [method.upper(), digest, content_type.strip(), blibli_signature_date(millis), blibli_signed_path(request_path)]
    )
    return base64.b64encode(_hmac(signature_key, raw.encode())).decode()
