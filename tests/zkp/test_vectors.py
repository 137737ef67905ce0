"""Encodings fixed by test vectors (``tests/data/zkp/vectors.json``).

Every value is derived deterministically (seeded scalar source), so a change to an
encoding, a generator, the transcript or a prover's message order shows up here.
Regenerate only on purpose (and bump ``zkp.transcript.VERSION``):
``.venv/bin/python -m tests.zkp.test_vectors --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from chain import codec
from chain.crypto.sm3 import sm3
from tests.zkp.helpers import seeded
from tests.zkp.transfer_fixtures import CHAIN, make_deal
from zkp.auditor import AuditorKey
from zkp.group import Point, hash_to_point, hash_to_scalar
from zkp.pedersen import pedersen_gens
from zkp.rangeproof import RangeProof, bulletproof_gens, prove_range, verify_range
from zkp.sigma import SigmaProof, dleq, prove, verify
from zkp.transcript import Transcript
from zkp.transfer import OwnershipRecord, Transfer, audit, owner_base, verify_transfer

PATH = Path(__file__).resolve().parents[1] / "data" / "zkp" / "vectors.json"


def build() -> dict[str, Any]:
    ped = pedersen_gens()
    G, H = bulletproof_gens().points(4)
    out: dict[str, Any] = {
        "generators": {
            "g": ped.g.encode().hex(),
            "h": ped.h.encode().hex(),
            "G": [p.encode().hex() for p in G],
            "H": [p.encode().hex() for p in H],
            "owner_base": owner_base().encode().hex(),
        },
        "hash_to_point": [
            {"domain": d.hex(), "message": m.hex(), "point": hash_to_point(d, m).encode().hex()}
            for d, m in [(b"", b""), (b"rongxin", b"abc"), (b"x" * 40, bytes(range(64)))]
        ],
        "hash_to_scalar": hash_to_scalar(b"rongxin", b"abc").to_bytes(32, "big").hex(),
    }
    t = Transcript(b"vector")
    t.append_message(b"m", b"hello")
    t.append_u64(b"n", 7)
    out["transcript_challenge"] = t.challenge_scalar(b"c").to_bytes(32, "big").hex()
    x = seeded(1)()
    A, B = hash_to_point(b"v", b"A"), hash_to_point(b"v", b"B")
    proof = prove(dleq(A * x, A, B * x, B), {"x": x}, Transcript(b"vector"), seeded(2))
    out["dleq"] = {"P": (A * x).encode().hex(), "Q": (B * x).encode().hex(), "proof": proof.encode().hex()}
    rng = seeded(3)
    blinds = [rng(), rng()]
    rp, commitments = prove_range([200, 55], blinds, 8, Transcript(b"vector"), rng)
    out["range_proof"] = {
        "n": 8,
        "commitments": [c.encode().hex() for c in commitments],
        "proof": rp.encode().hex(),
    }
    deal = make_deal(seed=7)
    payload = codec.encode(deal.transfer.to_payload())
    out["transfer"] = {
        "chain_id": CHAIN,
        "auditor_secret": deal.auditor.to_bytes().hex(),
        "record": {
            "work": deal.record.work.hex(),
            "seq": deal.record.seq,
            "owner": deal.record.owner.encode().hex(),
        },
        "payload_cbor": payload.hex(),
        "payload_sm3": sm3(payload).hex(),
    }
    return out


def test_vectors_are_stable() -> None:
    assert build() == json.loads(PATH.read_text())


def test_recorded_proofs_still_verify() -> None:
    vec = json.loads(PATH.read_text())
    A, B = hash_to_point(b"v", b"A"), hash_to_point(b"v", b"B")
    d = vec["dleq"]
    rel = dleq(Point.decode(bytes.fromhex(d["P"])), A, Point.decode(bytes.fromhex(d["Q"])), B)
    verify(rel, SigmaProof.decode(bytes.fromhex(d["proof"]), 1), Transcript(b"vector"))
    r = vec["range_proof"]
    commitments = [Point.decode(bytes.fromhex(c)) for c in r["commitments"]]
    verify_range(commitments, 8, RangeProof.decode(bytes.fromhex(r["proof"]), 8, 2), Transcript(b"vector"))
    t = vec["transfer"]
    rec = t["record"]
    record = OwnershipRecord(
        bytes.fromhex(rec["work"]), rec["seq"], Point.decode(bytes.fromhex(rec["owner"]))
    )
    transfer = Transfer.from_payload(codec.decode(bytes.fromhex(t["payload_cbor"])))
    key = AuditorKey.from_bytes(bytes.fromhex(t["auditor_secret"]))
    verify_transfer(transfer, t["chain_id"], record, key.public)
    assert audit(transfer, key).price == 1_000_000


if __name__ == "__main__":  # pragma: no cover
    if "--write" in sys.argv:
        PATH.parent.mkdir(parents=True, exist_ok=True)
        PATH.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n")
        print(f"wrote {PATH}")
