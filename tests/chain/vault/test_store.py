"""The local-directory backend: atomic, checked, sharded; nothing half-written survives."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from chain.errors import VaultError
from chain.vault.objects import ObjectHeader, seal_stream
from chain.vault.store import LocalStore, ObjectStore


def _object(size: int = 10_000) -> tuple[ObjectHeader, bytes]:
    out = io.BytesIO()
    header, _ = seal_stream(b"\x05" * 32, io.BytesIO(os.urandom(size)), out)
    return header, out.getvalue()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_is_sharded_and_verifiable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    header, blob = _object()
    store.put_stream(header.digest, io.BytesIO(blob))
    h = header.digest.hex()
    assert _files(tmp_path) == [f"objects/{h[:2]}/{h[2:4]}/{h}"]
    assert store.size(header.digest) == len(blob)
    assert store.verify(header.digest) == header
    assert oct(store.path(header.digest).stat().st_mode & 0o777) == "0o600"
    with store.open(header.digest) as fh:
        assert fh.read() == blob
    # storing it again is harmless
    store.put_stream(header.digest, io.BytesIO(blob))
    assert list(store.digests()) == [header.digest]


@pytest.mark.parametrize("cut", [0, 50, 117, 118, 5000, -1])
def test_truncated_upload_leaves_nothing(tmp_path: Path, cut: int) -> None:
    store = LocalStore(tmp_path)
    header, blob = _object()
    with pytest.raises(VaultError, match="truncated"):
        store.put_stream(header.digest, io.BytesIO(blob[:cut]))
    assert _files(tmp_path) == []
    assert not store.has(header.digest)


def refuse_bad_uploads(store: ObjectStore) -> None:
    """A wrong digest, an oversized and an altered upload are each refused (shared by every backend)."""
    header, blob = _object(100_000)
    other, _ = _object(10)
    with pytest.raises(VaultError, match="digest"):
        store.put_stream(other.digest, io.BytesIO(blob))
    with pytest.raises(VaultError) as info:
        store.put_stream(header.digest, io.BytesIO(blob), max_bytes=50_000)
    assert info.value.status == 413
    bad = bytearray(blob)
    bad[5000] ^= 1
    with pytest.raises(VaultError, match="body"):
        store.put_stream(header.digest, io.BytesIO(bytes(bad)))


def test_wrong_digest_oversized_and_altered_uploads_leave_nothing(tmp_path: Path) -> None:
    refuse_bad_uploads(LocalStore(tmp_path))
    assert _files(tmp_path) == []


def test_interrupted_writer_and_crash_leftovers(tmp_path: Path) -> None:
    header, blob = _object()
    store = LocalStore(tmp_path)
    w = store.writer(header.digest)
    w.feed(blob[:3000])
    assert len(list((tmp_path / "tmp").iterdir())) == 1  # a crash here leaves a temp file...
    LocalStore(tmp_path)  # ...which the next open removes
    assert _files(tmp_path) == []
    assert not store.has(header.digest)


def test_damage_at_rest_detected_and_quarantined(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    header, blob = _object()
    store.put_stream(header.digest, io.BytesIO(blob))
    path = store.path(header.digest)
    raw = bytearray(path.read_bytes())
    raw[200] ^= 0x80
    path.write_bytes(bytes(raw))
    with pytest.raises(VaultError, match="body"):
        store.verify(header.digest)
    store.quarantine(header.digest)
    assert not store.has(header.digest)
    assert len(list((tmp_path / "damaged").iterdir())) == 1
    with pytest.raises(VaultError) as info:
        store.verify(header.digest)
    assert info.value.status == 404


def test_bad_digest_length(tmp_path: Path) -> None:
    with pytest.raises(VaultError):
        LocalStore(tmp_path).has(b"short")
