"""The one sealed-secret format (chain.crypto.sealed) and crash-safe output (chain.crypto.atomic)."""

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from chain.crypto import atomic_write, keyfile, open_sealed, seal, sealed
from chain.crypto.errors import CryptoError, KeyFileError, WrongKindError, WrongPasswordError
from chain.crypto.sm2 import PrivateKey
from chain.errors import ChainError

FAST = 1 << 10
KIND = "example-secret"
LEGACY = Path(__file__).parents[2] / "data" / "sealed"


@pytest.fixture(scope="module")
def blob() -> bytes:
    return seal(b"\x00secret\xff", "correct horse", KIND, public={"id": "42"}, scrypt_n=FAST)


def test_round_trip_and_header(blob: bytes) -> None:
    assert open_sealed(blob, "correct horse", KIND) == b"\x00secret\xff"
    assert open_sealed(blob, b"correct horse", KIND) == b"\x00secret\xff"
    header = sealed.read_header(blob, KIND)
    assert (header.kind, header.public, header.n, header.r, header.p) == (KIND, {"id": "42"}, FAST, 8, 1)
    doc = json.loads(blob)
    assert (doc["format"], doc["version"], doc["kind"], doc["cipher"]) == (
        "rongxin-sealed",
        1,
        KIND,
        "SM4-GCM",
    )
    assert "correct horse" not in blob.decode() and b"\x00secret" not in blob


def test_wrong_password_is_a_chain_error(blob: bytes) -> None:
    with pytest.raises(WrongPasswordError, match="wrong password for this example-secret file"):
        open_sealed(blob, "Correct horse", KIND)
    with pytest.raises(ChainError):
        open_sealed(blob, "", KIND)


def test_wrong_kind_is_refused_before_scrypt(blob: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sealed, "derive_key", _no_scrypt)
    with pytest.raises(WrongKindError, match="this is a sealed example-secret file, not a other-secret file"):
        open_sealed(blob, "correct horse", "other-secret")
    with pytest.raises(KeyFileError, match="kind is lowercase"):
        open_sealed(blob, "correct horse", "Bad Kind")


def test_kind_is_authenticated(blob: bytes) -> None:
    """Rewriting the kind in the header does not make the file open as another kind."""
    doc = json.loads(blob) | {"kind": "other-secret"}
    with pytest.raises(WrongPasswordError):
        open_sealed(json.dumps(doc).encode(), "correct horse", "other-secret")


def test_every_truncation_is_refused(blob: bytes) -> None:
    end = len(blob.rstrip())
    for cut in range(end):
        with pytest.raises(KeyFileError):
            open_sealed(blob[:cut], "correct horse", KIND)


@pytest.mark.parametrize("bit", [0x01, 0x80])
def test_every_flipped_byte_is_refused(blob: bytes, bit: int) -> None:
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= bit
        with pytest.raises(CryptoError):
            open_sealed(bytes(bad), "correct horse", KIND)


def test_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(KeyFileError, match="at most 65536 bytes"):
        open_sealed(b" " * (sealed.MAX_FILE_BYTES + 1), "pw", KIND)


@pytest.mark.parametrize(
    ("n", "r", "p"),
    [
        (1 << 30, 8, 1),
        (1000, 8, 1),
        (1 << 9, 8, 1),
        (1 << 22, 32, 16),
        (1 << 22, 16, 1),
        (FAST, 0, 1),
        (FAST, 8, 99),
    ],
)
def test_absurd_kdf_parameters_are_refused_before_scrypt(
    blob: bytes, n: int, r: int, p: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = json.loads(blob)
    doc["kdf"].update(n=n, r=r, p=p)
    monkeypatch.setattr(sealed, "derive_key", _no_scrypt)
    with pytest.raises(KeyFileError, match="scrypt parameters"):
        open_sealed(json.dumps(doc).encode(), "correct horse", KIND)
    with pytest.raises(KeyFileError, match="scrypt parameters"):
        sealed.read_header(json.dumps(doc).encode(), KIND)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"version": 2}, "version 2"),
        ({"format": "rongxin-sm2-private-key"}, "'format' is 'rongxin-sm2-private-key'"),
        ({"cipher": "AES-GCM"}, "unsupported KDF or cipher"),
        ({"public": ["x"]}, "'public' is not an object"),
        ({"nonce": "AAAA"}, "nonce"),
        ({"ciphertext": "AAAA"}, "truncated"),
        ({"ciphertext": "not base64!"}, "damaged"),
    ],
)
def test_damaged_header_fields(blob: bytes, edit: dict[str, object], match: str) -> None:
    with pytest.raises(KeyFileError, match=match):
        open_sealed(json.dumps(json.loads(blob) | edit).encode(), "correct horse", KIND)


def test_writer_refuses_bad_arguments() -> None:
    with pytest.raises(KeyFileError, match="empty password"):
        seal(b"s", "", KIND, scrypt_n=FAST)
    with pytest.raises(KeyFileError, match="power of two"):
        seal(b"s", "pw", KIND, scrypt_n=3000)
    with pytest.raises(KeyFileError, match="power of two"):
        seal(b"s", "pw", KIND, scrypt_n=1 << 23)
    with pytest.raises(KeyFileError, match="str or bytes"):
        seal(b"s", 1234, KIND, scrypt_n=FAST)  # type: ignore[arg-type]
    with pytest.raises(KeyFileError, match="strings"):
        seal(b"s", "pw", KIND, public={"n": 5}, scrypt_n=FAST)  # type: ignore[dict-item]


def test_secrets_and_passwords_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    key = PrivateKey.generate()
    caplog.set_level(logging.DEBUG)
    blob = keyfile.encrypt_private_key(key, "hunter2-password", scrypt_n=FAST)
    keyfile.decrypt_private_key(blob, "hunter2-password")
    keyfile.decrypt_private_key((LEGACY / "legacy-sm2.key").read_bytes(), "legacy-pw")
    with pytest.raises(WrongPasswordError) as info:
        keyfile.decrypt_private_key(blob, "hunter2-wrong")
    text = caplog.text + str(info.value)
    assert "hunter2" not in text and "legacy-pw" not in text and key.to_bytes().hex() not in text


def test_sm2_key_file_in_the_earlier_layout_still_opens(tmp_path: Path) -> None:
    """A file written by chain.crypto.keyfile before the sealed format."""
    expected = json.loads((LEGACY / "expected.json").read_text())
    path = LEGACY / "legacy-sm2.key"
    key = keyfile.load_private_key(path, expected["password"])
    assert key.public_key.to_bytes().hex() == expected["sm2_public_key"]
    assert keyfile.read_public_key_hex(path) == expected["sm2_public_key"]
    with pytest.raises(WrongPasswordError):
        keyfile.load_private_key(path, "nope")
    doc = json.loads(path.read_text())
    for bad in (
        doc | {"public_key": PrivateKey.generate().public_key.to_bytes().hex()},
        doc | {"kdf": doc["kdf"] | {"n": FAST * 2}},
    ):
        with pytest.raises(WrongPasswordError):
            keyfile.decrypt_private_key(json.dumps(bad).encode(), expected["password"])
    with pytest.raises(KeyFileError, match="scrypt parameters"):
        keyfile.decrypt_private_key(
            json.dumps(doc | {"kdf": doc["kdf"] | {"n": 1 << 22, "r": 32, "p": 16}}), "x"
        )
    keyfile.save_private_key(key, tmp_path / "new.key", "pw", scrypt_n=FAST)
    assert json.loads((tmp_path / "new.key").read_text())["format"] == "rongxin-sealed"
    assert keyfile.read_public_key_hex(tmp_path / "new.key") == expected["sm2_public_key"]


def test_save_private_key_can_refuse_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_text("keep me")
    with pytest.raises(KeyFileError, match="exists"):
        keyfile.save_private_key(PrivateKey.generate(), path, "pw", scrypt_n=FAST, overwrite=False)
    assert path.read_text() == "keep me"


# --- atomic_write ----------------------------------------------------------------------------


def test_atomic_write_mode_refusal_and_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "out.key"
    atomic_write(path, b"first")
    assert path.read_bytes() == b"first" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(FileExistsError):
        atomic_write(path, b"second")
    assert path.read_bytes() == b"first"
    atomic_write(path, b"second", 0o644, overwrite=True)
    assert path.read_bytes() == b"second" and stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.key"]


def test_atomic_write_refuses_a_dangling_link_and_leaves_no_temp_file(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        atomic_write(link, b"x")
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        atomic_write(path, b"new", overwrite=True)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _no_scrypt(*args: object) -> bytes:
    raise AssertionError("scrypt must not run for this file")
