"""The S3-compatible vault backend: the :class:`~chain.vault.store.ObjectStore` interface over a bucket.

Objects are already sealed (SM4-GCM) and named by their SM3 digest, so the bucket holds
only ciphertext, under::

    <prefix>objects/ab/cd/abcd…(64 hex)     objects, sharded like the local store
    <prefix>damaged/abcd….<random>          objects a scrub found altered

An upload is checked byte by byte as it arrives (:class:`~chain.vault.objects.ObjectChecker`)
and becomes visible only when it is complete and verified: a small object is one ``PUT``
sent after its last byte was checked; a larger one is a multipart upload whose parts are
sent as they fill (memory stays within one part) and which is completed only after the
check, else aborted. Reads are re-hashed by the vault as for the local store, so an object
altered or truncated in the bucket is detected and a scrub repairs it from a replica.

Every failure of the service or the connection is a :class:`~chain.errors.VaultError`
(502, or 404 for an absent object). The secret key is never logged nor put in a message.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chain.errors import VaultError
from chain.vault.objects import ObjectChecker, ObjectHeader, check_stream
from chain.vault.store import write_stream

#: Smallest part S3 accepts in a multipart upload (all but the last part).
MIN_PART_BYTES = 5 * 1024 * 1024
DEFAULT_PART_BYTES = 16 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _failure(what: str, exc: Exception) -> VaultError:
    if isinstance(exc, ClientError):
        return VaultError(f"S3 {what} failed: {_code(exc) or 'error'}", 502)
    return VaultError(f"S3 {what} failed: {type(exc).__name__}", 502)


class _S3Reader(io.RawIOBase):
    """A ``GetObject`` body as a raw stream whose errors are :class:`VaultError`."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._body.read(len(buffer))
        except (BotoCoreError, ClientError, OSError) as exc:
            raise _failure("read", exc) from None
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _S3Writer:
    """An upload into an :class:`S3Store` (see the module docstring)."""

    def __init__(self, store: S3Store, digest: bytes, max_bytes: int | None) -> None:
        self.store = store
        self.key = store.key(digest)
        self.checker = ObjectChecker(digest, max_bytes)
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.done = False

    def _send_part(self, data: bytes) -> None:
        s = self.store
        try:
            if self.upload_id is None:
                self.upload_id = s.client.create_multipart_upload(Bucket=s.bucket, Key=self.key)["UploadId"]
            number = len(self.parts) + 1
            answer = s.client.upload_part(
                Bucket=s.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
            )
        except (BotoCoreError, ClientError) as exc:
            raise _failure("upload", exc) from None
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def feed(self, data: bytes) -> None:
        if self.done:
            raise VaultError("this upload is already finished")
        try:
            self.checker.feed(data)
            self.buffer += data
            while len(self.buffer) >= 2 * self.store.part_bytes:  # keep one part for the end
                part = bytes(self.buffer[: self.store.part_bytes])
                del self.buffer[: self.store.part_bytes]
                self._send_part(part)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> ObjectHeader:
        if self.done:
            raise VaultError("this upload is already finished")
        s = self.store
        try:
            header = self.checker.finish()
            if self.upload_id is None:
                try:
                    s.client.put_object(Bucket=s.bucket, Key=self.key, Body=bytes(self.buffer))
                except (BotoCoreError, ClientError) as exc:
                    raise _failure("upload", exc) from None
            else:
                if self.buffer:
                    self._send_part(bytes(self.buffer))
                try:
                    s.client.complete_multipart_upload(
                        Bucket=s.bucket,
                        Key=self.key,
                        UploadId=self.upload_id,
                        MultipartUpload={"Parts": self.parts},
                    )
                except (BotoCoreError, ClientError) as exc:
                    raise _failure("upload", exc) from None
                self.upload_id = None
        except BaseException:
            self.abort()
            raise
        self.done = True
        self.buffer = bytearray()
        return header

    def abort(self) -> None:
        self.done = True
        self.buffer = bytearray()
        if self.upload_id is not None:
            upload_id, self.upload_id = self.upload_id, None
            s = self.store
            with contextlib.suppress(BotoCoreError, ClientError):  # else the bucket's lifecycle rule
                s.client.abort_multipart_upload(Bucket=s.bucket, Key=self.key, UploadId=upload_id)


class S3Store:
    """Objects in an S3-compatible bucket (see the module docstring).

    Parameters
    ----------
    client : botocore S3 client
        Made by :meth:`connect` (or any S3 client, e.g. for tests).
    bucket : str
        The bucket (it must exist).
    prefix : str
        Prepended to every key (e.g. ``"node-0/"``), so that nodes may share a bucket.
    part_bytes : int
        Multipart part size; an object larger than twice this is sent in parts.
    """

    def __init__(
        self, client: Any, bucket: str, prefix: str = "", part_bytes: int = DEFAULT_PART_BYTES
    ) -> None:
        if part_bytes < 1:
            raise VaultError("the part size must be positive")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = part_bytes

    @classmethod
    def connect(
        cls,
        endpoint_url: str,
        bucket: str,
        *,
        region: str,
        access_key_id: str,
        secret_access_key: str,
        prefix: str = "",
        part_bytes: int = DEFAULT_PART_BYTES,
        timeout_s: float = 60.0,
    ) -> S3Store:
        """A store over the bucket at ``endpoint_url`` with explicit credentials (no lookup
        of environment, profile or instance metadata credentials)."""
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        try:
            session = boto3.session.Session(
                aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region
            )
            client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                config=Config(
                    connect_timeout=timeout_s,
                    read_timeout=timeout_s,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path"},
                ),
            )
        except (BotoCoreError, ClientError, ValueError) as exc:
            raise _failure("connection setup", exc) from None
        return cls(client, bucket, prefix, part_bytes)

    def key(self, digest: bytes) -> str:
        """The object key of ``digest`` (whether or not it is there)."""
        if len(digest) != 32:
            raise VaultError("an object digest is 32 bytes")
        h = digest.hex()
        return f"{self.prefix}objects/{h[:2]}/{h[2:4]}/{h}"

    def size(self, digest: bytes) -> int | None:
        """The stored object's size in bytes, or ``None``."""
        key = self.key(digest)
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return None
            raise _failure("lookup", exc) from None
        except BotoCoreError as exc:
            raise _failure("lookup", exc) from None
        return int(answer["ContentLength"])

    def has(self, digest: bytes) -> bool:
        """Whether the object is stored (not whether it is intact: see :meth:`verify`)."""
        return self.size(digest) is not None

    def open(self, digest: bytes) -> BinaryIO:
        """The stored object for reading; :class:`VaultError` (404) if absent."""
        key = self.key(digest)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise VaultError(f"no object {digest.hex()[:16]}… in this vault", 404) from None
            raise _failure("read", exc) from None
        except BotoCoreError as exc:
            raise _failure("read", exc) from None
        return io.BufferedReader(_S3Reader(answer["Body"]), 1 << 20)

    def writer(self, digest: bytes, max_bytes: int | None = None) -> _S3Writer:
        """Start an upload of the object ``digest`` (checked as it arrives)."""
        self.key(digest)
        return _S3Writer(self, digest, max_bytes)

    def put_stream(self, digest: bytes, src: BinaryIO, max_bytes: int | None = None) -> ObjectHeader:
        """Store the object read from ``src``; its header once it is checked and in place."""
        return write_stream(self.writer(digest, max_bytes), src)

    def verify(self, digest: bytes) -> ObjectHeader:
        """Re-hash the stored object (downloading it); its header, or :class:`VaultError`
        if it is damaged (404 if it is missing)."""
        with self.open(digest) as fh:
            return check_stream(digest, fh)

    def delete(self, digest: bytes) -> None:
        """Remove the object; nothing if absent."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))
        except (BotoCoreError, ClientError) as exc:
            raise _failure("delete", exc) from None

    def quarantine(self, digest: bytes) -> None:
        """Move a damaged object out of the way (to ``damaged/``); nothing if absent."""
        key = self.key(digest)
        target = f"{self.prefix}damaged/{digest.hex()}.{os.urandom(4).hex()}"
        try:
            self.client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key}
            )
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES | {"NoSuchKey"}:
                return
            raise _failure("quarantine", exc) from None
        except BotoCoreError as exc:
            raise _failure("quarantine", exc) from None
        self.delete(digest)

    def digests(self) -> Iterator[bytes]:
        """The digests of the stored objects (in key order)."""
        start = f"{self.prefix}objects/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            for page in pages:
                for entry in page.get("Contents", ()):
                    name = str(entry["Key"]).rsplit("/", 1)[-1]
                    if (
                        len(name) == 64
                        and set(name) <= _HEX
                        and entry["Key"] == self.key(bytes.fromhex(name))
                    ):
                        yield bytes.fromhex(name)
        except (BotoCoreError, ClientError) as exc:
            raise _failure("listing", exc) from None


__all__ = ["DEFAULT_PART_BYTES", "MIN_PART_BYTES", "S3Store"]
