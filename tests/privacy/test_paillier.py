"""Paillier layer: packing bounds, key validation, key files, tamper and wrong-key detection."""

from __future__ import annotations

import json
from pathlib import Path

import phe
import pytest

from privacy import paillier
from privacy.errors import CiphertextError, KeyValidationError, OverflowRisk


def test_packed_sum_equals_plain_sum(keypair: tuple[paillier.PublicKey, paillier.PrivateKey]) -> None:
    pk, sk = keypair
    rows = [[3, -7, 0, 2**29 - 1, -(2**29) + 1] * 20 for _ in range(4)]
    layout = paillier.SlotLayout.plan(30, 4, pk.n.bit_length(), 100)
    assert layout.n_ciphertexts == -(-100 // layout.slots_per_ciphertext) < 100
    cts = paillier.combine(pk, [paillier.encrypt_packed(pk, r, layout) for r in rows])
    got = paillier.decrypt_packed(sk, [paillier.rerandomize(pk, c) for c in cts], layout)
    assert got == [sum(col) for col in zip(*rows, strict=True)]


def test_unpacked_matches(keypair: tuple[paillier.PublicKey, paillier.PrivateKey]) -> None:
    pk, sk = keypair
    cts = paillier.combine(
        pk, [paillier.encrypt_unpacked(pk, [5, -9]), paillier.encrypt_unpacked(pk, [1, 2])]
    )
    assert paillier.decrypt_unpacked(sk, cts, 1 << 10) == [6, -7]


def test_overflowing_value_is_refused(keypair: tuple[paillier.PublicKey, paillier.PrivateKey]) -> None:
    pk, _ = keypair
    layout = paillier.SlotLayout.plan(10, 3, pk.n.bit_length(), 2)
    with pytest.raises(OverflowRisk, match="exceeds the query's 10-bit bound"):
        layout.pack([1 << 10, 0])
    with pytest.raises(OverflowRisk, match="a slot needs"):
        paillier.SlotLayout.plan(3000, 3, 2048, 1)


def test_rerandomize_changes_ciphertext_not_plaintext(
    keypair: tuple[paillier.PublicKey, paillier.PrivateKey],
) -> None:
    pk, sk = keypair
    layout = paillier.SlotLayout.plan(20, 1, pk.n.bit_length(), 1)
    (c,) = paillier.encrypt_packed(pk, [42], layout)
    c2 = paillier.rerandomize(pk, c)
    assert c2 != c
    assert paillier.decrypt_packed(sk, [c2], layout) == [42]


@pytest.mark.parametrize("flip", [1, 500, 2000, 4000])
def test_tampered_ciphertext_is_detected(
    keypair: tuple[paillier.PublicKey, paillier.PrivateKey], flip: int
) -> None:
    pk, sk = keypair
    layout = paillier.SlotLayout.plan(30, 3, pk.n.bit_length(), 40)
    cts = paillier.combine(pk, [paillier.encrypt_packed(pk, list(range(40)), layout) for _ in range(3)])
    bad = cts[0] ^ (1 << flip)
    with pytest.raises(CiphertextError, match="tampered"):
        paillier.decrypt_packed(sk, [bad], layout)


def test_out_of_range_ciphertexts_are_refused(
    keypair: tuple[paillier.PublicKey, paillier.PrivateKey],
) -> None:
    pk, _ = keypair
    for c in (0, pk.nsquare, pk.nsquare + 5, pk.n * 7):
        with pytest.raises(CiphertextError, match=r"Z\*_\{n\^2\}"):
            paillier.check_ciphertext(pk, c)


def test_wrong_key_is_detected(keypair: tuple[paillier.PublicKey, paillier.PrivateKey]) -> None:
    pk, _ = keypair
    _other_pk, other_sk = paillier.generate_keypair(2048)
    layout = paillier.SlotLayout.plan(30, 3, 2048, 10)
    cts = paillier.encrypt_packed(pk, list(range(10)), layout)
    with pytest.raises(CiphertextError):
        paillier.decrypt_packed(other_sk, [c % other_sk.public_key.nsquare for c in cts], layout)


def test_foreign_public_keys_are_validated(keypair: tuple[paillier.PublicKey, paillier.PrivateKey]) -> None:
    pk, _ = keypair
    assert paillier.validate_public_key(pk) is pk
    small, _ = phe.generate_paillier_keypair(n_length=1024)
    cases = [
        (small, "at least 2048"),
        (phe.PaillierPublicKey(pk.n * 2 // 2 + 1), "even"),
        (
            phe.PaillierPublicKey(pk.n - pk.n % 3 + 3 if (pk.n - pk.n % 3 + 3) % 2 else pk.n - pk.n % 3),
            "small prime",
        ),
        ("not a key", "expected a Paillier public key"),
    ]
    for key, message in cases:
        with pytest.raises(KeyValidationError, match=message):
            paillier.validate_public_key(key)
    odd_g = phe.PaillierPublicKey(pk.n)
    odd_g.g = pk.n + 3
    with pytest.raises(KeyValidationError, match="g = n \\+ 1"):
        paillier.validate_public_key(odd_g)
    with pytest.raises(KeyValidationError, match="square or a prime"):
        paillier.validate_public_key(phe.PaillierPublicKey(20011**220))
    with pytest.raises(KeyValidationError):
        paillier.public_key_from_bytes(b"\x01" * 10)


def test_key_file_round_trip_and_failures(
    keypair: tuple[paillier.PublicKey, paillier.PrivateKey], tmp_path: Path
) -> None:
    _, sk = keypair
    path = tmp_path / "reg.pkey"
    paillier.save_private_key(sk, path, "pw", scrypt_n=1024)
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"%x" % sk.p not in path.read_bytes()
    back = paillier.load_private_key(path, "pw")
    assert (back.p, back.q) == (sk.p, sk.q)
    with pytest.raises(KeyValidationError, match="wrong password"):
        paillier.load_private_key(path, "nope")
    doc = json.loads(path.read_text())
    doc["n"] = format(sk.public_key.n + 2, "x")
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyValidationError, match="wrong password"):
        paillier.load_private_key(path, "pw")
    path.write_text("{}")
    with pytest.raises(KeyValidationError, match="not a rongxin-paillier-private-key"):
        paillier.load_private_key(path, "pw")
    with pytest.raises(KeyValidationError, match="empty password"):
        paillier.encrypt_private_key(sk, "")
    with pytest.raises(KeyValidationError, match="cannot read"):
        paillier.load_private_key(tmp_path / "missing", "pw")


LEGACY = Path(__file__).parents[1] / "data" / "sealed"


def test_key_file_in_the_earlier_layout_still_opens(tmp_path: Path) -> None:
    """A file written by the Paillier key-file code before the one sealed format."""
    expected = json.loads((LEGACY / "expected.json").read_text())
    path = LEGACY / "legacy-paillier.pkey"
    sk = paillier.load_private_key(path, expected["password"])
    assert format(sk.public_key.n, "x") == expected["paillier_n"]
    with pytest.raises(KeyValidationError, match="wrong password"):
        paillier.load_private_key(path, "nope")
    doc = json.loads(path.read_text())
    for bad, match in (
        (doc | {"n": format(sk.public_key.n + 2, "x")}, "wrong password"),
        (doc | {"version": 2}, "version"),
        (doc | {"kdf": doc["kdf"] | {"n": 1 << 30}}, "scrypt parameters"),
        (doc | {"ciphertext": doc["ciphertext"][:16]}, "truncated"),
        ({k: v for k, v in doc.items() if k != "nonce"}, "damaged"),
    ):
        with pytest.raises(KeyValidationError, match=match):
            paillier.decrypt_private_key(json.dumps(bad).encode(), expected["password"])
    # Saving again writes the sealed format.
    paillier.save_private_key(sk, tmp_path / "new.pkey", "pw", scrypt_n=1024)
    assert json.loads((tmp_path / "new.pkey").read_text())["format"] == "rongxin-sealed"


def test_key_file_refuses_other_kinds_oversize_and_overwrite(
    keypair: tuple[paillier.PublicKey, paillier.PrivateKey], tmp_path: Path
) -> None:
    from zkp.auditor import AuditorKey, seal_auditor_key

    _, sk = keypair
    with pytest.raises(KeyValidationError, match="not a rongxin-paillier-private-key"):
        paillier.decrypt_private_key(seal_auditor_key(AuditorKey.generate(), "pw", scrypt_n=1024), "pw")
    with pytest.raises(KeyValidationError, match="at most"):
        paillier.decrypt_private_key(b" " * 70_000, "pw")
    path = tmp_path / "reg.pkey"
    path.write_text("keep me")
    with pytest.raises(KeyValidationError, match="exists"):
        paillier.save_private_key(sk, path, "pw", scrypt_n=1024, overwrite=False)
    assert path.read_text() == "keep me"
