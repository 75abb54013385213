"""Where evidence bytes are kept: a local directory or S3-compatible object storage."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from monitor.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 256 * 1024


class MissingObject(Exception):
    """The store has nothing under this key (deleted, or never written)."""


class StoreUnavailable(Exception):
    """The store could not be written or read (disk full, object storage unreachable)."""


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


@dataclass
class Opened:
    """An object opened for reading; the caller reads it in chunks, then closes it."""

    body: Readable
    size: int

    def chunks(self) -> Iterator[bytes]:
        """Every chunk, then close: a clip of any size is never held in memory whole."""
        try:
            while chunk := self.body.read(CHUNK):
                yield chunk
        finally:
            self.body.close()


class EvidenceStore(Protocol):
    """What upload, playback, verification and purge need of a store. Keys are relative
    names made by `new_key`, the same in every store, so a store's objects can be copied to
    another (a prefix of the store's own may be put before them)."""

    def describe(self, key: str) -> str:
        """Where the key's object is, for people: a path or an s3:// address."""
        ...

    def put(self, key: str, data: bytes) -> None:
        """Write the object durably: once this returns, the bytes survive a crash.
        Raises StoreUnavailable when it cannot."""
        ...

    def open(self, key: str) -> Opened:
        """Raises MissingObject when there is nothing under the key, StoreUnavailable when
        the store cannot be read."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; nothing under the key already is not an error."""
        ...


def new_key(device_id: str) -> str:
    """Named at random: an evidence id is any text, and two clips may have the same digest.
    (Device ids are letters, digits, `-` and `_`, so they are safe as a directory name.)"""
    return f"{device_id}/{uuid.uuid4().hex}.bin"


def sha256_of(opened: Opened) -> str:
    digest = hashlib.sha256()
    for chunk in opened.chunks():
        digest.update(chunk)
    return digest.hexdigest()


class LocalStore:
    """Files under a directory (`<data_dir>/evidence`): the default, and what `vigil demo` uses."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys are made by new_key; a row edited to point elsewhere must not reach other files.
        if not path.is_relative_to(self.root.resolve()):
            raise MissingObject(f"key {key!r} is outside the evidence directory")
        return path

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp = path.with_suffix(".part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreUnavailable(f"cannot write {path}: {e.strerror}") from e

    def open(self, key: str) -> Opened:
        try:
            f = open(self._path(key), "rb")  # noqa: SIM115 (closed by Opened.chunks)
        except (FileNotFoundError, IsADirectoryError) as e:
            raise MissingObject(f"no file {self.describe(key)}") from e
        except OSError as e:
            raise StoreUnavailable(f"cannot read {self.describe(key)}: {e.strerror}") from e
        return Opened(f, os.fstat(f.fileno()).st_size)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph...), one per clip. boto3
    finds the credentials as it always does: environment, shared files, instance role."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        import boto3

        # A session of its own: boto3's default session is not safe to share between threads.
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.evidence_s3_endpoint_url or None,
            region_name=settings.evidence_s3_region or None,
        )
        return cls(client, settings.evidence_s3_bucket, settings.evidence_s3_prefix)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # S3 acknowledges a PUT only once the object is stored durably.
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except (BotoCoreError, ClientError) as e:
            raise StoreUnavailable(f"cannot write {self.describe(key)}: {e}") from e

    def open(self, key: str) -> Opened:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey as e:
            raise MissingObject(f"no object {self.describe(key)}") from e
        except (BotoCoreError, ClientError) as e:
            # Without s3:ListBucket a missing object is AccessDenied too (docs/operations.md).
            raise StoreUnavailable(f"cannot read {self.describe(key)}: {e}") from e
        return Opened(got["Body"], got["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def from_settings(settings: Settings) -> EvidenceStore:
    """The store the settings choose (VIGIL_EVIDENCE_STORE)."""
    if settings.evidence_store == "s3":
        return S3Store.from_settings(settings)
    return LocalStore(settings.evidence_dir)
