"""Webhook signature verification, per channel (pure: bytes in, bool out).

Every channel signs the raw body with HMAC-SHA256 and sends the lowercase hex digest in a header:

- Tokopedia: ``Authorization-Hmac`` = HMAC(webhook_secret, raw_body)
- TikTok Shop: ``Authorization`` = HMAC(app_secret, app_key + raw_body)
- Shopee: ``Authorization`` = HMAC(partner_key, callback_url + "|" + raw_body)

A delivery is authentic when the header matches the digest under any active secret (the current one and,
during a rotation, the previous one). Digests are compared with :func:`hmac.compare_digest`, and every active
secret is always tried, so the time taken does not tell which secret (if any) came close.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

TOKOPEDIA_HEADER = "authorization-hmac"
TIKTOK_SHOP_HEADER = "authorization"
SHOPEE_HEADER = "authorization"


def hmac_hex(key: bytes, message: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` under ``key``."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SignatureScheme:
    """How one webhook route is signed: the header, the bytes signed before the body, the active secrets."""

    header: str
    prefix: bytes
    secrets: tuple[bytes, ...]

    def signed_message(self, body: bytes) -> bytes:
        """The exact bytes the sender signs."""
        return self.prefix + body

    def verify(self, body: bytes, header_value: str | None) -> bool:
        """True when ``header_value`` is the signature of ``body`` under one of the active secrets."""
        return verify_hex(self.secrets, self.signed_message(body), header_value)


def verify_hex(secrets: Sequence[bytes], message: bytes, header_value: str | None) -> bool:
    """Constant-time check of a hex HMAC-SHA256 header against every secret (no early exit)."""
    if not header_value or not secrets:
        return False
    presented = header_value.strip().lower().encode("ascii", errors="replace")
    ok = False
    for secret in secrets:
        ok |= hmac.compare_digest(hmac_hex(secret, message).encode("ascii"), presented)
    return ok


def _active(current: str, previous: str | None) -> tuple[bytes, ...]:
    return (current.encode(), previous.encode()) if previous else (current.encode(),)


def tokopedia_scheme(secret: str, previous: str | None = None) -> SignatureScheme:
    """Tokopedia: ``Authorization-Hmac`` over the raw body."""
    return SignatureScheme(TOKOPEDIA_HEADER, b"", _active(secret, previous))


def tiktok_shop_scheme(app_key: str, app_secret: str, previous: str | None = None) -> SignatureScheme:
    """TikTok Shop: ``Authorization`` over app key + raw body."""
    return SignatureScheme(TIKTOK_SHOP_HEADER, app_key.encode(), _active(app_secret, previous))


def shopee_scheme(callback_url: str, partner_key: str, previous: str | None = None) -> SignatureScheme:
    """Shopee: ``Authorization`` over the push's callback URL + ``|`` + raw body."""
    return SignatureScheme(SHOPEE_HEADER, callback_url.encode() + b"|", _active(partner_key, previous))
