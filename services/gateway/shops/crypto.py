"""Tokens at rest: AES-256-GCM under ``KARYA_TOKEN_KEY``, bound to the row they belong to.

The key is 32 random bytes, given as 64 hex digits or unpadded/padded URL-safe Base64 (``python -c "import
secrets; print(secrets.token_hex(32))"``). A sealed value is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``;
the associated data is ``channel:shop_id:field``, so a ciphertext copied to another shop or column does not open.
``key_id`` (the first 8 bytes of SHA-256 of the key, hex) is stored beside the values: a row sealed under another
key is reported as such (:class:`WrongTokenKey`) instead of as corrupt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["TOKEN_KEY_ENV", "TokenCipher", "TokenKeyError", "WrongTokenKey"]

TOKEN_KEY_ENV = "KARYA_TOKEN_KEY"  # noqa: S105 - the variable name
_NONCE = 12


class TokenKeyError(RuntimeError):
    """``KARYA_TOKEN_KEY`` is missing or not a 32-byte key (the message says which, never the value)."""


class WrongTokenKey(RuntimeError):
    """A stored token was sealed under another key, or its ciphertext was altered."""


def _decode_key(text: str) -> bytes:
    text = text.strip()
    try:
        if len(text) == 64:
            return bytes.fromhex(text)
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        raise TokenKeyError(f"{TOKEN_KEY_ENV} is neither 64 hex digits nor Base64") from None


class TokenCipher:
    """Seals and opens token values for one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise TokenKeyError(f"{TOKEN_KEY_ENV} must be 32 bytes (AES-256), got {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).digest()[:8].hex()

    def __repr__(self) -> str:
        return f"TokenCipher(key_id={self.key_id!r})"

    @classmethod
    def from_text(cls, text: str | None) -> TokenCipher:
        """The cipher of a key written as hex or Base64; :class:`TokenKeyError` when it is missing or malformed."""
        if not text or not text.strip():
            raise TokenKeyError(f"{TOKEN_KEY_ENV} is not set: shop tokens cannot be stored or read without it")
        return cls(_decode_key(text))

    @classmethod
    def from_env(cls) -> TokenCipher:
        """The cipher of ``KARYA_TOKEN_KEY``."""
        return cls.from_text(os.environ.get(TOKEN_KEY_ENV))

    def seal(self, value: str, context: str) -> bytes:
        """``value`` encrypted and authenticated together with ``context`` (``channel:shop:field``)."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._aead.encrypt(nonce, value.encode(), context.encode())

    def open(self, sealed: bytes, context: str, key_id: str) -> str:
        """The value sealed by :meth:`seal` under this key and ``context``; :class:`WrongTokenKey` otherwise."""
        if key_id != self.key_id:
            raise WrongTokenKey(f"{context} was sealed under key {key_id}, {TOKEN_KEY_ENV} is key {self.key_id}")
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], context.encode()).decode()
        except InvalidTag:
            raise WrongTokenKey(f"{context} does not open under key {self.key_id}: altered or moved") from None
