"""Password hashing with argon2id (argon2-cffi's RFC 9106 low-memory profile) and generated passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id; parameters from argon2-cffi's RFC 9106 low-memory profile
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))
MIN_LENGTH = 12


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (refuses one shorter than :data:`MIN_LENGTH`)."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password has at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash (no such user) a dummy hash is verified, so
    an unknown name takes as long as a wrong password."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was hashed with other parameters than today's (rehash it after a good login)."""
    return _HASHER.check_needs_rehash(stored)


def generate_password() -> str:
    """A new random password (20 URL-safe characters, ~120 bits)."""
    return secrets.token_urlsafe(15)
