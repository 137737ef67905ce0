"""The published test vectors (``vectors.json``, spec in ``docs/protocol.md``): recomputed
step by step from the spec with independent code, and reproduced by a live handshake."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from chain import codec
from chain.crypto import PrivateKey, PublicKey, hmac_sm3, sm3, sm4
from chain.crypto.sm2 import SM2_CURVE
from chain.net import transcript as tr
from chain.types import Certificate
from tests.chain.crypto import sm2_reference as ref
from tests.chain.net import make_vectors

V: dict[str, Any] = json.loads(Path(__file__).with_name("vectors.json").read_text())
SIDES = ("initiator", "responder")


def h(name: str, where: dict[str, Any] | None = None) -> bytes:
    return bytes.fromhex((where or V)[name])


def hkdf_sm3(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with HMAC-SM3 (independent of ``cryptography``'s HKDF)."""
    prk = hmac_sm3(salt, ikm)
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac_sm3(prk, block + info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]


def test_hellos_follow_the_layout() -> None:
    for role, side in enumerate(SIDES, start=1):
        s = V[side]
        cid = V["chain_id"].encode()
        expected = (
            b"RXP2" + bytes([1, 1, role, len(cid)]) + cid + h("genesis_hash") + h("ephemeral_public_key", s)
        )
        assert h("hello", s) == expected
        scalar = int(s["ephemeral_private_key"], 16)
        point = ref.mul(SM2_CURVE, scalar, (SM2_CURVE.gx, SM2_CURVE.gy))
        assert point is not None
        assert h("ephemeral_public_key", s) == b"\x04" + point[0].to_bytes(32, "big") + point[1].to_bytes(
            32, "big"
        )


def test_transcript_secret_and_keys() -> None:
    hello_i, hello_r = h("hello", V["initiator"]), h("hello", V["responder"])
    transcript = sm3(b"rongxin-p2p/1 transcript" + hello_i + hello_r)
    assert transcript == h("transcript_hash") == tr.transcript_hash(hello_i, hello_r)
    eph_r = h("ephemeral_public_key", V["responder"])
    shared = ref.mul(
        SM2_CURVE,
        int(V["initiator"]["ephemeral_private_key"], 16),
        (int.from_bytes(eph_r[1:33], "big"), int.from_bytes(eph_r[33:], "big")),
    )
    assert shared is not None and shared[0].to_bytes(32, "big") == h("shared_secret")
    okm = hkdf_sm3(h("shared_secret"), transcript, b"rongxin-p2p/1 traffic keys", 32)
    assert okm[:16] == h("key_initiator_to_responder")
    assert okm[16:] == h("key_responder_to_initiator")
    assert tr.traffic_keys(h("shared_secret"), transcript) == (okm[:16], okm[16:])


def open_record(record: bytes, key: bytes, counter: int) -> bytes:
    length = int.from_bytes(record[:4], "big")
    assert length == len(record) - 4
    return sm4.gcm_decrypt(key, counter.to_bytes(12, "big"), record[4:], record[:4])


def test_auth_records_carry_certificate_and_transcript_signature() -> None:
    root = PublicKey.from_bytes(h("root_public_key"))
    keys = {"initiator": h("key_initiator_to_responder"), "responder": h("key_responder_to_initiator")}
    for side in SIDES:
        s = V[side]
        plain = open_record(h("auth_record", s), keys[side], 0)
        assert plain[0] == 0x01
        cert_len = int.from_bytes(plain[1:3], "big")
        cert_bytes, signature = plain[3 : 3 + cert_len], plain[3 + cert_len :]
        assert cert_bytes == h("certificate", s) and len(signature) == 64
        cert = Certificate.from_dict(codec.decode(cert_bytes))
        cert.verify(root)
        identity = PrivateKey.from_bytes(h("identity_private_key", s)).public_key
        assert cert.key() == identity and identity.to_bytes() == h("identity_public_key", s)
        label = f"rongxin-p2p/1 {side} auth".encode()
        identity.verify(label + h("transcript_hash") + cert_bytes, signature)


def test_finish_and_first_records_are_reproducible() -> None:
    keys = {"initiator": h("key_initiator_to_responder"), "responder": h("key_responder_to_initiator")}
    for side in SIDES:
        record = h("finish_record", V[side])
        assert open_record(record, keys[side], 1) == b"\x02\x00"
        assert record == _seal(keys[side], 1, b"\x02\x00")
    first = V["first_record"]
    plain = bytes([first["channel"]]) + h("payload", first)
    assert h("nonce", first) == bytes(11) + b"\x02"
    assert h("record", first) == _seal(keys["initiator"], first["counter"], plain)


def _seal(key: bytes, counter: int, plain: bytes) -> bytes:
    header = (len(plain) + 16).to_bytes(4, "big")
    return header + sm4.gcm_encrypt(key, counter.to_bytes(12, "big"), plain, header)


def test_a_live_handshake_reproduces_the_vectors() -> None:
    certs = {side: Certificate.from_dict(codec.decode(h("certificate", V[side]))) for side in SIDES}
    wire = asyncio.run(asyncio.wait_for(make_vectors.record_handshake(certs), 30))
    assert V["chain_id"] == make_vectors.CHAIN_ID and h("genesis_hash") == make_vectors.GENESIS_HASH
    for side, direction in zip(SIDES, ("c2s", "s2c"), strict=True):
        hello, auth, finish = wire[direction][:3]
        assert hello == h("hello", V[side])
        assert len(auth) == len(h("auth_record", V[side]))  # same layout, fresh signature
        assert finish == h("finish_record", V[side])
    assert wire["c2s"][3] == h("record", V["first_record"])
