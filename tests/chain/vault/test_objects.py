"""The vault object format: round trips, and every kind of damage or wrong key refused."""

from __future__ import annotations

import io
import os

import pytest

from chain.crypto import PrivateKey
from chain.errors import VaultError
from chain.vault.objects import (
    HEADER_SIZE,
    ObjectChecker,
    ObjectHeader,
    body_size_for,
    check_stream,
    open_file,
    open_stream,
    seal_file,
    seal_stream,
    unwrap_key,
    wrap_key,
)

OWNER = b"\x07" * 32


def _seal(data: bytes) -> tuple[ObjectHeader, bytes, bytes]:
    out = io.BytesIO()
    header, key = seal_stream(OWNER, io.BytesIO(data), out)
    return header, key, out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 200_000])
def test_round_trip_sizes(size: int) -> None:
    data = os.urandom(size)
    header, key, blob = _seal(data)
    assert len(blob) == header.object_size == HEADER_SIZE + body_size_for(size)
    assert header.owner == OWNER and header.content_size == size
    out = io.BytesIO()
    assert open_stream(key, header.digest, io.BytesIO(blob), out) == header
    assert out.getvalue() == data


def test_fresh_key_per_object_and_distinct_digests() -> None:
    h1, k1, b1 = _seal(b"same content")
    h2, k2, b2 = _seal(b"same content")
    assert k1 != k2 and h1.digest != h2.digest and b1[HEADER_SIZE:] != b2[HEADER_SIZE:]
    assert h1.content_sm3 == h2.content_sm3


def test_every_flipped_byte_is_detected() -> None:
    header, key, blob = _seal(os.urandom(3000))
    for pos in list(range(0, HEADER_SIZE, 9)) + list(range(HEADER_SIZE, len(blob), 97)) + [len(blob) - 1]:
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(VaultError):
            check_stream(header.digest, io.BytesIO(bytes(bad)))
        with pytest.raises(VaultError):
            open_stream(key, header.digest, io.BytesIO(bytes(bad)), io.BytesIO())


def test_truncated_and_extended_objects_refused() -> None:
    header, key, blob = _seal(os.urandom(70_000))
    for cut in (0, 10, HEADER_SIZE, HEADER_SIZE + 5, len(blob) - 1):
        with pytest.raises(VaultError, match=r"truncated|header"):
            check_stream(header.digest, io.BytesIO(blob[:cut]))
        with pytest.raises(VaultError):
            open_stream(key, header.digest, io.BytesIO(blob[:cut]), io.BytesIO())
    with pytest.raises(VaultError, match="longer"):
        check_stream(header.digest, io.BytesIO(blob + b"x"))
    with pytest.raises(VaultError):
        open_stream(key, header.digest, io.BytesIO(blob + b"x"), io.BytesIO())


def test_wrong_digest_and_wrong_key() -> None:
    header, _key, blob = _seal(b"evidence")
    other, _, _ = _seal(b"evidence")
    with pytest.raises(VaultError, match="does not hash to its digest"):
        check_stream(other.digest, io.BytesIO(blob))
    with pytest.raises(VaultError, match="does not decrypt"):
        open_stream(bytes(16), header.digest, io.BytesIO(blob), io.BytesIO())


def test_forged_header_with_consistent_body_hash_still_fails_content_check() -> None:
    # An owner (or anyone) who rewrites the header's content digest makes a new object:
    # its digest changes, and a reader who decrypts finds the plaintext does not match.
    header, key, blob = _seal(b"evidence")
    forged = ObjectHeader(header.owner, b"\x00" * 32, header.content_size, header.body_size, header.body_sm3)
    raw = forged.to_bytes() + blob[HEADER_SIZE:]
    assert check_stream(forged.digest, io.BytesIO(raw)) == forged  # well formed, but...
    with pytest.raises(VaultError, match="content SM3"):
        open_stream(key, forged.digest, io.BytesIO(raw), io.BytesIO())


def test_malformed_headers() -> None:
    header, _, blob = _seal(b"x")
    with pytest.raises(VaultError, match="RXV1"):
        ObjectHeader.parse(b"XXXX" + blob[4:HEADER_SIZE])
    with pytest.raises(VaultError, match="version"):
        ObjectHeader.parse(blob[:4] + b"\x09" + blob[5:HEADER_SIZE])
    lying = ObjectHeader(OWNER, header.content_sm3, 10**9, header.body_size, header.body_sm3)
    with pytest.raises(VaultError, match="sizes"):
        ObjectHeader.parse(lying.to_bytes())
    with pytest.raises(VaultError, match="117"):
        ObjectHeader.parse(blob[:50])


def test_checker_caps_size_from_the_header() -> None:
    header, _, blob = _seal(os.urandom(100_000))
    checker = ObjectChecker(header.digest, max_bytes=50_000)
    with pytest.raises(VaultError) as info:
        checker.feed(blob[:HEADER_SIZE])
    assert info.value.status == 413


def test_wrapped_keys_open_only_for_their_recipient_and_object() -> None:
    alice, mallory = PrivateKey.generate(), PrivateKey.generate()
    header, key, _ = _seal(b"x")
    wrapped = wrap_key(alice.public_key, header.digest, key)
    assert unwrap_key(alice, header.digest, wrapped) == key
    with pytest.raises(VaultError, match="another"):
        unwrap_key(mallory, header.digest, wrapped)
    with pytest.raises(VaultError, match="another object"):
        unwrap_key(alice, b"\x01" * 32, wrapped)
    bad = bytearray(wrapped)
    bad[-1] ^= 1
    with pytest.raises(VaultError):
        unwrap_key(alice, header.digest, bytes(bad))
    with pytest.raises(VaultError):
        unwrap_key(alice, header.digest, b"")


def test_files_appear_only_when_whole(tmp_path: os.PathLike[str]) -> None:
    from pathlib import Path

    d = Path(tmp_path)
    (d / "plain").write_bytes(b"p" * 5000)
    header, key = seal_file(OWNER, d / "plain", d / "obj")
    assert open_file(key, header.digest, d / "obj", d / "back").content_size == 5000
    assert (d / "back").read_bytes() == b"p" * 5000
    raw = bytearray((d / "obj").read_bytes())
    raw[-3] ^= 0xFF
    (d / "obj").write_bytes(bytes(raw))
    with pytest.raises(VaultError):
        open_file(key, header.digest, d / "obj", d / "out")
    assert not (d / "out").exists()
    assert sorted(p.name for p in d.iterdir()) == ["back", "obj", "plain"]
