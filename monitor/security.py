"""Secrets and hashes: argon2 for passwords and PINs, Mosquitto's PBKDF2 for device secrets,
signed access tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_argon2 = PasswordHasher()
# PINs are checked on the alert path (a cancel, a visit end), twice each: OWASP's minimum
# argon2id settings keep that to tens of milliseconds. A 4 to 8 digit PIN cannot be kept from
# an offline guesser by hash cost alone anyway; the hashes' protection is the database's.
_argon2_pin = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

# Mosquitto 2.x password-file format: $7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>.
# Device secrets carry 256 random bits, so a fast KDF is enough to make the stored hash useless
# to a thief; the slow argon2 is kept for what people choose (passwords, PINs).
_MOSQ_ITERATIONS = 1000
_MOSQ_SALT_BYTES = 12


def hash_secret(secret: str) -> str:
    """A slow hash for something a person chose (a password or PIN)."""
    return _argon2.hash(secret)


def hash_pin(pin: str) -> str:
    return _argon2_pin.hash(pin)


def verify_secret(stored: str, given: str) -> bool:
    """Check a password or PIN against its argon2 hash (the hash carries its own settings)."""
    try:
        return _argon2.verify(stored, given)
    except (VerificationError, InvalidHashError):
        return False


def new_device_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_device_secret(secret: str, iterations: int = _MOSQ_ITERATIONS) -> str:
    salt = secrets.token_bytes(_MOSQ_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_device_secret(stored: str, given: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = stored.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64)
        want = base64.b64decode(digest_b64)
        got = hashlib.pbkdf2_hmac("sha512", given.encode(), salt, int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(want, got)


def make_token(secret_key: str, subject: str, role: str, ttl_s: int) -> str:
    now = datetime.now(UTC)
    claims = {"sub": subject, "role": role, "iat": now, "exp": now + timedelta(seconds=ttl_s)}
    return jwt.encode(claims, secret_key, algorithm="HS256")


def read_token(secret_key: str, token: str) -> dict[str, Any] | None:
    """The token's claims, or None if it is forged, malformed or expired."""
    try:
        claims: dict[str, Any] = jwt.decode(token, secret_key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims
