import io
import os

import pytest
from gmssl import sm4 as gm_sm4
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import sm4
from chain.crypto.errors import CiphertextFormatError, CryptoError, DecryptionError, KeyFormatError

K = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_gbt32907_example() -> None:
    assert sm4.encrypt_block(K, K).hex() == "681edf34d206965e86b3e94f536e4246"


@pytest.mark.slow
def test_gbt32907_million_rounds() -> None:
    assert sm4.encrypt_block(K, K, rounds=1_000_000).hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_block_matches_gmssl() -> None:
    for _ in range(20):
        key, block = os.urandom(16), os.urandom(16)
        ref = gm_sm4.CryptSM4()
        ref.set_key(key, gm_sm4.SM4_ENCRYPT)
        # gmssl's ECB pads (PKCS#7): the first block is the raw block cipher output.
        assert ref.crypt_ecb(block)[:16] == sm4.encrypt_block(key, block)


def test_rfc8998_sm4_gcm_vector() -> None:
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    pt = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    ct = bytes.fromhex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    )
    tag = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")
    assert sm4.gcm_encrypt(K, iv, pt, aad) == ct + tag
    assert sm4.gcm_decrypt(K, iv, ct + tag, aad) == pt


@given(st.binary(max_size=2000), st.binary(max_size=64))
def test_seal_round_trip(pt: bytes, aad: bytes) -> None:
    key = sm4.generate_key()
    sealed = sm4.seal(key, pt, aad)
    assert len(sealed) == len(pt) + sm4.NONCE_SIZE + sm4.TAG_SIZE
    assert sm4.open_sealed(key, sealed, aad) == pt


@given(st.binary(min_size=1, max_size=200), st.data())
def test_seal_detects_any_bit_flip(pt: bytes, data: st.DataObject) -> None:
    key = sm4.generate_key()
    sealed = bytearray(sm4.seal(key, pt))
    pos = data.draw(st.integers(0, len(sealed) - 1))
    sealed[pos] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(DecryptionError):
        sm4.open_sealed(key, bytes(sealed))


def test_seal_wrong_key_aad_and_truncation() -> None:
    key = sm4.generate_key()
    sealed = sm4.seal(key, b"payload", b"aad")
    with pytest.raises(DecryptionError, match="authentication failed"):
        sm4.open_sealed(sm4.generate_key(), sealed, b"aad")
    with pytest.raises(DecryptionError):
        sm4.open_sealed(key, sealed, b"other")
    with pytest.raises(CiphertextFormatError):
        sm4.open_sealed(key, sealed[:20])
    with pytest.raises(DecryptionError):
        sm4.open_sealed(key, sealed[:-1])


@pytest.mark.parametrize("bad", [b"", b"short", b"x" * 17, "a string key"])
def test_bad_keys(bad) -> None:
    with pytest.raises(KeyFormatError):
        sm4.seal(bad, b"x")


def _enc(key: bytes, data: bytes, chunk: int) -> bytes:
    out = io.BytesIO()
    assert sm4.encrypt_stream(key, io.BytesIO(data), out, chunk_size=chunk) == len(data)
    return out.getvalue()


def _dec(key: bytes, blob: bytes) -> bytes:
    out = io.BytesIO()
    sm4.decrypt_stream(key, io.BytesIO(blob), out)
    return out.getvalue()


@settings(max_examples=60)
@given(st.binary(max_size=700), st.sampled_from([16, 17, 64, 100]))
def test_stream_round_trip(data: bytes, chunk: int) -> None:
    key = sm4.generate_key()
    assert _dec(key, _enc(key, data, chunk)) == data


def test_stream_truncation_at_chunk_boundary_is_detected() -> None:
    key = sm4.generate_key()
    blob = _enc(key, b"a" * 64, 16)
    header, body = blob[: sm4.STREAM_HEADER_SIZE], blob[sm4.STREAM_HEADER_SIZE :]
    sealed = 16 + sm4.TAG_SIZE
    for keep in range(1, 4):
        with pytest.raises(CiphertextFormatError, match="truncated"):
            _dec(key, header + body[: keep * sealed])
    with pytest.raises(CiphertextFormatError):
        _dec(key, header)
    with pytest.raises(CiphertextFormatError):
        _dec(key, blob[:10])


def test_stream_reorder_duplicate_extend_and_header_tamper() -> None:
    key = sm4.generate_key()
    blob = _enc(key, bytes(range(64)), 16)
    header, body = blob[: sm4.STREAM_HEADER_SIZE], blob[sm4.STREAM_HEADER_SIZE :]
    c = [body[i : i + 32] for i in range(0, len(body), 32)]
    with pytest.raises(DecryptionError):
        _dec(key, header + c[1] + c[0] + b"".join(c[2:]))
    with pytest.raises(DecryptionError):
        _dec(key, header + c[0] + c[0] + b"".join(c[1:]))
    with pytest.raises(DecryptionError):
        _dec(key, blob + c[-1])
    tampered = bytearray(blob)
    tampered[12] ^= 1  # inside the salt
    with pytest.raises(DecryptionError):
        _dec(key, bytes(tampered))
    with pytest.raises(DecryptionError):
        _dec(sm4.generate_key(), blob)
    bad_magic = b"XXXX" + blob[4:]
    with pytest.raises(CiphertextFormatError, match="header"):
        _dec(key, bad_magic)
    bad_version = blob[:4] + b"\x09" + blob[5:]
    with pytest.raises(CiphertextFormatError, match="version"):
        _dec(key, bad_version)
    bad_chunk = blob[:5] + (1 << 30).to_bytes(4, "big") + blob[9:]
    with pytest.raises(CiphertextFormatError, match="chunk size"):
        _dec(key, bad_chunk)


def test_file_round_trip_and_no_partial_output(tmp_path) -> None:
    key = sm4.generate_key()
    src, enc, dec = tmp_path / "in.bin", tmp_path / "enc.rxs4", tmp_path / "out.bin"
    data = os.urandom(300_000)
    src.write_bytes(data)
    assert sm4.encrypt_file(key, src, enc) == len(data)
    assert sm4.decrypt_file(key, enc, dec) == len(data)
    assert dec.read_bytes() == data
    # A tampered last chunk: nothing is written, and no temporary file is left.
    blob = bytearray(enc.read_bytes())
    blob[-1] ^= 0xFF
    enc.write_bytes(bytes(blob))
    target = tmp_path / "never.bin"
    with pytest.raises(DecryptionError):
        sm4.decrypt_file(key, enc, target)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc.rxs4", "in.bin", "out.bin"]
    with pytest.raises(CryptoError, match="cannot open"):
        sm4.encrypt_file(key, tmp_path / "missing", tmp_path / "x")


def test_stream_constant_memory(tmp_path) -> None:
    import tracemalloc

    key = sm4.generate_key()
    src, enc, dec = tmp_path / "in", tmp_path / "enc", tmp_path / "dec"
    with open(src, "wb") as fh:
        for _ in range(32):
            fh.write(os.urandom(1 << 20))
    tracemalloc.start()
    sm4.encrypt_file(key, src, enc)
    sm4.decrypt_file(key, enc, dec)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 * 1024 * 1024  # 32 MiB through, under 2 MiB held
    assert src.read_bytes() == dec.read_bytes()
