"""The S3-compatible backend against a real S3 server on loopback (moto in server mode):
the same contract as the local store — checked, atomic, listed, quarantined, repaired."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

import pytest

from chain.errors import VaultError
from chain.vault.objects import ObjectHeader, seal_stream
from chain.vault.s3 import MIN_PART_BYTES, S3Store
from tests.chain.vault.s3server import S3Server, s3_server
from tests.chain.vault.test_store import refuse_bad_uploads


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with s3_server() as s:
        yield s


def _object(size: int = 10_000) -> tuple[ObjectHeader, bytes]:
    out = io.BytesIO()
    header, _ = seal_stream(b"\x05" * 32, io.BytesIO(os.urandom(size)), out)
    return header, out.getvalue()


def _keys(store: S3Store) -> list[str]:
    answer = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(e["Key"] for e in answer.get("Contents", ()))


def _uploads(store: S3Store) -> list[str]:
    return [u["Key"] for u in store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", ())]


def test_put_get_list_delete(server: S3Server) -> None:
    store = server.store("put-get", prefix="node-0/")
    header, blob = _object()
    assert not store.has(header.digest) and store.size(header.digest) is None
    assert store.put_stream(header.digest, io.BytesIO(blob)) == header
    h = header.digest.hex()
    assert _keys(store) == [f"node-0/objects/{h[:2]}/{h[2:4]}/{h}"]
    assert store.size(header.digest) == len(blob)
    assert store.verify(header.digest) == header
    with store.open(header.digest) as fh:
        assert fh.read() == blob
    store.put_stream(header.digest, io.BytesIO(blob))  # storing it again is harmless
    other, other_blob = _object(50)
    store.put_stream(other.digest, io.BytesIO(other_blob))
    assert sorted(store.digests()) == sorted([header.digest, other.digest])
    # a stray key under the prefix is not an object
    store.client.put_object(Bucket=store.bucket, Key="node-0/objects/zz/not-an-object", Body=b"x")
    # another node's prefix in the same bucket is not ours
    assert list(server.store("put-get", prefix="node-1/").digests()) == []
    store.delete(header.digest)
    store.delete(header.digest)  # absent: nothing
    assert list(store.digests()) == [other.digest]
    with pytest.raises(VaultError) as info:
        store.open(header.digest)
    assert info.value.status == 404


def test_multipart_upload_in_bounded_parts(server: S3Server) -> None:
    store = server.store("multipart", part_bytes=MIN_PART_BYTES)
    header, blob = _object(2 * MIN_PART_BYTES + 12345)
    w = store.writer(header.digest)
    for i in range(0, len(blob), 1 << 20):
        w.feed(blob[i : i + (1 << 20)])
        assert len(w.buffer) < 2 * MIN_PART_BYTES  # memory stays within two parts
    assert _keys(store) == []  # invisible until committed
    assert w.commit() == header
    assert len(w.parts) == 2
    assert store.verify(header.digest) == header
    assert _uploads(store) == []


@pytest.mark.parametrize("cut", [0, 117, 5000, -1])
def test_truncated_upload_leaves_nothing(server: S3Server, cut: int) -> None:
    store = server.store("truncated")
    header, blob = _object()
    with pytest.raises(VaultError, match="truncated"):
        store.put_stream(header.digest, io.BytesIO(blob[:cut]))
    assert _keys(store) == [] and not store.has(header.digest)


def test_truncated_multipart_upload_is_aborted(server: S3Server) -> None:
    store = server.store("truncated-multipart", part_bytes=MIN_PART_BYTES)
    header, blob = _object(2 * MIN_PART_BYTES + 100)
    with pytest.raises(VaultError, match="truncated"):
        store.put_stream(header.digest, io.BytesIO(blob[:-10]))
    assert _keys(store) == [] and _uploads(store) == []


def test_wrong_digest_oversized_and_altered_uploads_leave_nothing(server: S3Server) -> None:
    store = server.store("refused")
    refuse_bad_uploads(store)
    assert _keys(store) == [] and _uploads(store) == []


def test_damaged_and_truncated_objects_detected_and_quarantined(server: S3Server) -> None:
    store = server.store("damaged")
    header, blob = _object()
    key = store.key(header.digest)
    for damage in (blob[:200] + bytes([blob[200] ^ 0x80]) + blob[201:], blob[:-7]):
        store.put_stream(header.digest, io.BytesIO(blob))
        store.client.put_object(Bucket=store.bucket, Key=key, Body=damage)  # altered in the bucket
        with pytest.raises(VaultError, match=r"body|truncated"):
            store.verify(header.digest)
        store.quarantine(header.digest)
        assert not store.has(header.digest)
    assert [k.split("/")[0] for k in _keys(store)] == ["damaged", "damaged"]
    store.quarantine(header.digest)  # absent: nothing
    with pytest.raises(VaultError) as info:
        store.verify(header.digest)
    assert info.value.status == 404


def test_missing_bucket_or_unreachable_service_is_a_vault_error(server: S3Server) -> None:
    header, blob = _object(10)
    missing = S3Store(server.store("exists").client, "no-such-bucket")
    with pytest.raises(VaultError) as info:
        list(missing.digests())
    assert info.value.status == 502
    with pytest.raises(VaultError) as info:
        missing.put_stream(header.digest, io.BytesIO(blob))
    assert info.value.status == 502
    dead = S3Store.connect(
        "http://127.0.0.1:9",
        "b",
        region="cn-north-1",
        access_key_id="a",
        secret_access_key="s3cret-value",
        timeout_s=2,
    )
    for call in (
        lambda: list(dead.digests()),
        lambda: dead.has(header.digest),
        lambda: dead.open(header.digest),
    ):
        with pytest.raises(VaultError) as info:
            call()
        assert info.value.status == 502 and "s3cret-value" not in str(info.value)


def test_bad_digest_length(server: S3Server) -> None:
    with pytest.raises(VaultError):
        server.store("bad").has(b"short")
