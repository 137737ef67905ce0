import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import envelope
from chain.crypto.errors import CiphertextFormatError, DecryptionError, WrongKeyTypeError
from chain.crypto.sm2 import PrivateKey

KEY = PrivateKey.generate()


def _seal(data: bytes) -> bytes:
    out = io.BytesIO()
    envelope.seal_stream(KEY.public_key, io.BytesIO(data), out)
    return out.getvalue()


def _open(blob: bytes, key: PrivateKey = KEY) -> bytes:
    out = io.BytesIO()
    envelope.open_stream(key, io.BytesIO(blob), out)
    return out.getvalue()


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=200_000))
def test_round_trip(data: bytes) -> None:
    assert _open(_seal(data)) == data


def test_wrong_recipient_and_tampering() -> None:
    blob = _seal(b"evidence" * 1000)
    with pytest.raises(DecryptionError):
        _open(blob, PrivateKey.generate())
    for pos in (10, 60, 150, len(blob) // 2, len(blob) - 1):
        bad = bytearray(blob)
        bad[pos] ^= 0x40
        with pytest.raises(DecryptionError):
            _open(bytes(bad))


@pytest.mark.parametrize("cut", [0, 3, 7, 50, 104, 140])
def test_truncated_envelopes(cut: int) -> None:
    blob = _seal(b"x" * 100)
    with pytest.raises(DecryptionError):
        _open(blob[:cut])


def test_header_errors() -> None:
    blob = _seal(b"abc")
    with pytest.raises(CiphertextFormatError, match="RXE2"):
        _open(b"NOPE" + blob[4:])
    with pytest.raises(CiphertextFormatError, match="version"):
        _open(blob[:4] + b"\x07" + blob[5:])
    with pytest.raises(CiphertextFormatError, match="wrapped-key size"):
        _open(blob[:5] + (60000).to_bytes(2, "big") + blob[7:])


def test_wrong_key_types() -> None:
    with pytest.raises(WrongKeyTypeError):
        envelope.seal_stream(KEY, io.BytesIO(b"x"), io.BytesIO())  # type: ignore[arg-type]
    with pytest.raises(WrongKeyTypeError):
        envelope.open_stream(KEY.public_key, io.BytesIO(b"x"), io.BytesIO())  # type: ignore[arg-type]


def test_files_are_written_only_when_authentic(tmp_path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"z" * 70_000)
    envelope.seal_file(KEY.public_key, src, tmp_path / "a.rxe")
    assert envelope.open_file(KEY, tmp_path / "a.rxe", tmp_path / "b.bin") == 70_000
    assert (tmp_path / "b.bin").read_bytes() == src.read_bytes()
    with pytest.raises(DecryptionError):
        envelope.open_file(PrivateKey.generate(), tmp_path / "a.rxe", tmp_path / "c.bin")
    assert not (tmp_path / "c.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.rxe", "b.bin"]
