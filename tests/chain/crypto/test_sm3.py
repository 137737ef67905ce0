import importlib
import io
import os

import pytest
from gmssl import sm3 as gm_sm3
from hypothesis import given
from hypothesis import strategies as st

from chain.crypto import SM3, CryptoError, hmac_sm3, hmac_sm3_verify, sm3, sm3_file, sm3_kdf, sm3_stream

sm3_module = importlib.import_module("chain.crypto.sm3")

# GB/T 32905-2016 Appendix A.
ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_standard_vectors() -> None:
    assert sm3(b"abc").hex() == ABC
    assert sm3(b"abcd" * 16).hex() == ABCD16


def test_both_backends_agree() -> None:
    h = sm3_module._CryptographySM3()
    h.update(b"abcd" * 16)
    assert h.digest().hex() == ABCD16
    # private on purpose: cross-checks the generic HMAC path against the fast one
    assert sm3_module._hmac_generic(b"k" * 100, b"msg") == hmac_sm3(b"k" * 100, b"msg")


def test_incremental_equals_one_shot() -> None:
    h = SM3(b"ab")
    c = h.copy()
    h.update(b"c")
    assert h.hexdigest() == ABC
    c.update(b"d")
    assert c.digest() == sm3(b"abd")
    assert h.digest() == h.digest()  # digest() does not finalize


def test_rejects_non_bytes() -> None:
    with pytest.raises(CryptoError):
        sm3("abc")  # type: ignore[arg-type]
    with pytest.raises(CryptoError):
        SM3().update("abc")  # type: ignore[arg-type]


@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=500))
def test_streaming_any_split(data: bytes, chunk: int) -> None:
    assert sm3_stream(io.BytesIO(data), chunk_size=chunk) == sm3(data)


@given(st.binary(max_size=300))
def test_matches_gmssl(data: bytes) -> None:
    assert sm3(data).hex() == gm_sm3.sm3_hash(list(data))


def test_file_hash_and_missing_file(tmp_path) -> None:
    p = tmp_path / "f.bin"
    data = os.urandom(3 * (1 << 20) + 17)
    p.write_bytes(data)
    assert sm3_file(p) == sm3(data)
    with pytest.raises(CryptoError, match="cannot read"):
        sm3_file(tmp_path / "missing")


def test_hmac_sm3_rfc2104_structure_and_verify() -> None:
    key, msg = b"key", b"The quick brown fox"
    pad = key.ljust(64, b"\0")
    expected = sm3(bytes(b ^ 0x5C for b in pad) + sm3(bytes(b ^ 0x36 for b in pad) + msg))
    assert hmac_sm3(key, msg) == expected
    assert hmac_sm3_verify(key, msg, expected)
    assert not hmac_sm3_verify(key, msg + b".", expected)
    assert not hmac_sm3_verify(b"other", msg, expected)


@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=200))
def test_kdf_matches_gmssl(z: bytes, klen: int) -> None:
    assert sm3_kdf(z, klen).hex() == gm_sm3.sm3_kdf(z.hex().encode(), klen)


def test_kdf_rejects_bad_length() -> None:
    with pytest.raises(CryptoError):
        sm3_kdf(b"z", 0)


@pytest.mark.slow
def test_one_gib_file_in_constant_memory(tmp_path) -> None:
    import resource

    p = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    ref = SM3()
    with open(p, "wb") as fh:
        for _ in range(1024):
            fh.write(block)
            ref.update(block)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert sm3_file(p) == ref.digest()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 64 * 1024  # KiB: far below the 1 GiB file


def test_fallback_backend_gives_same_results(monkeypatch) -> None:
    monkeypatch.setattr(sm3_module, "HASHLIB_SM3", False)
    assert sm3_module.sm3(b"abc").hex() == ABC
    assert sm3_module.sm3_stream(io.BytesIO(b"abcd" * 16), chunk_size=5).hex() == ABCD16
    assert sm3_module.SM3(memoryview(b"abc")).hexdigest() == ABC
    fallback = sm3_module.hmac_sm3(b"key", b"data")
    monkeypatch.setattr(sm3_module, "HASHLIB_SM3", True)
    assert fallback == sm3_module.hmac_sm3(b"key", b"data")
