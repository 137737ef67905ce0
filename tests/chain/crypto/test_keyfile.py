import json
import os
import stat

import pytest

from chain.crypto import keyfile, sealed
from chain.crypto.errors import KeyFileError, WrongKeyTypeError, WrongPasswordError
from chain.crypto.sm2 import PrivateKey

FAST = 1 << 10  # tests only; the default is 2**17


def test_round_trip_and_file_mode(tmp_path) -> None:
    key = PrivateKey.generate()
    path = tmp_path / "node.key"
    keyfile.save_private_key(key, path, "correct horse", scrypt_n=FAST)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keyfile.load_private_key(path, "correct horse") == key
    assert keyfile.read_public_key_hex(path) == key.public_key.to_bytes().hex()
    text = path.read_text()
    assert key.to_bytes().hex() not in text
    assert [p.name for p in tmp_path.iterdir()] == ["node.key"]


def test_wrong_password(tmp_path) -> None:
    key = PrivateKey.generate()
    blob = keyfile.encrypt_private_key(key, "pw", scrypt_n=FAST)
    with pytest.raises(WrongPasswordError, match="wrong password"):
        keyfile.decrypt_private_key(blob, "PW")
    with pytest.raises(WrongPasswordError):
        keyfile.decrypt_private_key(blob, b"")


@pytest.mark.parametrize("field", ["public_key", "nonce", "ciphertext", "kdf.salt", "kdf.n"])
def test_any_edit_is_detected(field: str) -> None:
    key = PrivateKey.generate()
    doc = json.loads(keyfile.encrypt_private_key(key, "pw", scrypt_n=FAST))
    if field == "public_key":
        doc[field] = PrivateKey.generate().public_key.to_bytes().hex()
    elif field == "kdf.n":
        doc["kdf"]["n"] = FAST * 2
    elif field == "kdf.salt":
        doc["kdf"]["salt"] = "A" * 22 + "=="
    else:
        raw = bytearray(__import__("base64").b64decode(doc[field]))
        raw[0] ^= 1
        doc[field] = __import__("base64").b64encode(bytes(raw)).decode()
    with pytest.raises((WrongPasswordError, KeyFileError)):
        keyfile.decrypt_private_key(json.dumps(doc).encode(), "pw")


@pytest.mark.parametrize(
    "blob, match",
    [
        (b"", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "format"),
        (b'{"format": "other"}', "format"),
        (b'{"format": "rongxin-sm2-private-key", "version": 9}', "version"),
        (b'{"format": "rongxin-sm2-private-key", "version": 1}', "damaged"),
        (b"x" * 100_000, "at most"),
    ],
)
def test_not_a_key_file(blob: bytes, match: str) -> None:
    with pytest.raises(KeyFileError, match=match):
        keyfile.decrypt_private_key(blob, "pw")


def test_refuses_hostile_kdf_parameters() -> None:
    doc = json.loads(keyfile.encrypt_private_key(PrivateKey.generate(), "pw", scrypt_n=FAST))
    doc["kdf"]["n"] = 1 << 30
    with pytest.raises(KeyFileError, match="scrypt parameters"):
        keyfile.decrypt_private_key(json.dumps(doc).encode(), "pw")


@pytest.mark.parametrize(("n", "r", "p"), [(1 << 22, 32, 16), (1 << 22, 16, 1), (1 << 20, 8, 16)])
def test_refuses_kdf_cost_beyond_what_the_writer_makes(n: int, r: int, p: int, monkeypatch) -> None:
    """Each parameter in range, the product not: up to 16 GiB and 64 times the costliest
    file this module writes, from a 1 KB file. Refused before scrypt runs."""
    doc = json.loads(keyfile.encrypt_private_key(PrivateKey.generate(), "pw", scrypt_n=FAST))
    doc["kdf"].update(n=n, r=r, p=p)

    def no_scrypt(*args: object) -> bytes:
        raise AssertionError("scrypt must not run for these parameters")

    monkeypatch.setattr(sealed, "derive_key", no_scrypt)
    with pytest.raises(KeyFileError, match="scrypt parameters"):
        keyfile.decrypt_private_key(json.dumps(doc).encode(), "pw")


def test_bad_arguments(tmp_path) -> None:
    key = PrivateKey.generate()
    with pytest.raises(KeyFileError, match="empty password"):
        keyfile.encrypt_private_key(key, "", scrypt_n=FAST)
    with pytest.raises(KeyFileError, match="power of two"):
        keyfile.encrypt_private_key(key, "pw", scrypt_n=1000)
    with pytest.raises(WrongKeyTypeError):
        keyfile.encrypt_private_key(key.public_key, "pw")  # type: ignore[arg-type]
    with pytest.raises(KeyFileError, match="cannot read"):
        keyfile.load_private_key(tmp_path / "missing.key", "pw")
