"""The installation's VAPID key pair: made once, kept in the store, the same on every replica."""

from __future__ import annotations

import base64
import threading
import weakref
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from sqlalchemy.exc import IntegrityError

from monitor.db import Store
from worker_app.models import VapidKey

# The one row: a subscription is bound to the public key it was made with, so the key is
# never replaced once made (replacing it would silently end every phone's subscription).
KEY_ROW = 1


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    private_key: ec.EllipticCurvePrivateKey
    # The uncompressed P-256 point, base64url: the app's `applicationServerKey`.
    public_key: str

    def signer(self) -> Vapid02:
        return Vapid02(self.private_key)


def _row_of(key: ec.EllipticCurvePrivateKey) -> VapidKey:
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKey(id=KEY_ROW, private_key=b64url(scalar), public_key=b64url(point))


def _keys_of(row: VapidKey) -> VapidKeys:
    scalar = int.from_bytes(from_b64url(row.private_key), "big")
    return VapidKeys(ec.derive_private_key(scalar, ec.SECP256R1()), row.public_key)


def _load_or_make(store: Store) -> VapidKeys:
    with store.session() as db:
        row = db.get(VapidKey, KEY_ROW)
    if row is None:
        try:
            with store.begin() as db:
                db.add(_row_of(ec.generate_private_key(ec.SECP256R1())))
        except IntegrityError:
            pass  # another replica made it at the same moment: theirs is the one kept
        with store.session() as db:
            row = db.get(VapidKey, KEY_ROW)
    assert row is not None
    return _keys_of(row)


_made: weakref.WeakKeyDictionary[Store, VapidKeys] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def keys(store: Store) -> VapidKeys:
    """The key pair, made on first use (read from the store once per process)."""
    with _lock:
        found = _made.get(store)
        if found is None:
            found = _made[store] = _load_or_make(store)
        return found
