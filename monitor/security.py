"""Secrets and hashes: argon2 for passwords and PINs, Mosquitto's PBKDF2 for device secrets,
signed access tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from monitor.db import MAX_ROW_ID

_argon2 = PasswordHasher()
# PINs are checked on the alert path (a cancel, a visit end), twice each: OWASP's minimum
# argon2id settings keep that to tens of milliseconds. A 4 to 8 digit PIN cannot be kept from
# an offline guesser by hash cost alone anyway; the hashes' protection is the database's.
_argon2_pin = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

# Mosquitto 2.x password-file format: $7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>.
# Device secrets carry 256 random bits, so one salted SHA-512 already makes the stored hash
# useless to a thief (iterations only slow the guessing of secrets that can be guessed); the
# slow argon2 is kept for what people choose (passwords, PINs). Iterations cost the broker:
# on every reload Mosquitto checks each connected device's password again and delivers
# nothing meanwhile, about 0.75 ms a device at 1,000 iterations (2.3 s for 3,000 devices)
# and 0.02 s for all 3,000 at one (docs/operations.md, "Credentials at the broker at once").
_MOSQ_ITERATIONS = 1
_MOSQ_SALT_BYTES = 12


def hash_secret(secret: str) -> str:
    """A slow hash for something a person chose (a password or PIN)."""
    return _argon2.hash(secret)


@cache
def _nobody_hash() -> str:
    """The hash of a password nobody knows, made with the same settings as every user's
    (once per process, on first use)."""
    return _argon2.hash(secrets.token_urlsafe(32))


def verify_nobody(given: str) -> bool:
    """Check a password for a name that has no (active) account: against a hash of the same
    cost as a user's, so that sign-in takes as long whether or not the name exists. Always
    False."""
    verify_secret(_nobody_hash(), given)
    return False


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
    # `iat` to the microsecond, not PyJWT's whole seconds: a session ended (a new password,
    # the account disabled) must end every token issued before it, even in the same second.
    claims = {
        "sub": subject,
        "role": role,
        "iat": now.timestamp(),
        "exp": now + timedelta(seconds=ttl_s),
    }
    return jwt.encode(claims, secret_key, algorithm="HS256")


# A user id as `make_token` writes it: a row id, in decimal.
_USER_ID = re.compile(r"[1-9][0-9]{0,9}")


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    issued: float  # seconds since the epoch
    expires: float  # seconds since the epoch


def read_token(secret_key: str, token: str) -> TokenClaims | None:
    """The token's claims, or None if it is forged, malformed or expired, has no expiry, or
    names no user id as `make_token` writes one: a token that says nothing of when it ends
    is refused rather than accepted for ever."""
    try:
        claims = jwt.decode(
            token, secret_key, algorithms=["HS256"], options={"require": ["exp", "iat", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    # PyJWT has checked that `exp` and `iat` are numbers and `sub` a string.
    sub = claims["sub"]
    if not _USER_ID.fullmatch(sub) or int(sub) > MAX_ROW_ID:
        return None
    return TokenClaims(int(sub), float(claims["iat"]), float(claims["exp"]))
