"""Generate ``vectors.json``: one complete handshake and a first data record, with fixed
identity and ephemeral keys, as bytes on the wire.

Run ``python -m tests.chain.net.make_vectors`` from the repository root to rewrite the
file (the SM2 signatures inside certificates and AUTH records are randomized, so the
file changes; everything else is reproducible).  ``test_vectors.py`` checks the file
against independent recomputation and a live handshake.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from chain.crypto import PrivateKey
from chain.crypto.ecdh import EphemeralKey
from chain.crypto.sm2 import N
from chain.crypto.sm3 import sm3
from chain.net import Channel, SecureConnection
from chain.net import transcript as tr
from chain.types import Certificate, Role
from tests.chain.net.netfixtures import Consortium, Node, Proxy, connect_pair

PATH = Path(__file__).with_name("vectors.json")
CHAIN_ID = "rongxin-vectors"
GENESIS_HASH = sm3(b"rongxin-p2p/1 test vector genesis")
FIRST_PAYLOAD = b"rongxin-p2p/1 first record"


def fixed_scalar(label: str) -> int:
    """A reproducible scalar in ``[1, n-2]`` named by ``label``."""
    return int.from_bytes(sm3(label.encode()), "big") % (N - 2) + 1


ROOT = PrivateKey(fixed_scalar("test vector root"))
IDENTITY = {
    "initiator": PrivateKey(fixed_scalar("test vector initiator identity")),
    "responder": PrivateKey(fixed_scalar("test vector responder identity")),
}
EPHEMERAL = {
    "initiator": EphemeralKey(fixed_scalar("test vector initiator ephemeral")),
    "responder": EphemeralKey(fixed_scalar("test vector responder ephemeral")),
}


def consortium() -> Consortium:
    return Consortium(root=ROOT, chain_id=CHAIN_ID, genesis_hash=GENESIS_HASH)


async def record_handshake(certs: dict[str, Certificate]) -> dict[str, list[bytes]]:
    """Run the handshake over loopback with the fixed keys and return the wire units
    (``c2s``: initiator's hello, AUTH, FINISH, first record; ``s2c``: the responder's)."""
    group = consortium()
    nodes = {side: Node(IDENTITY[side], certs[side]) for side in IDENTITY}
    proxy = Proxy()
    try:
        mine, theirs = await connect_pair(
            nodes["initiator"],
            nodes["responder"],
            group.options(),
            group.options(),
            client_ephemeral=EPHEMERAL["initiator"],
            server_ephemeral=EPHEMERAL["responder"],
            via=proxy,
        )
        assert isinstance(mine, SecureConnection) and isinstance(theirs, SecureConnection), (mine, theirs)
        await mine.send(Channel.CONSENSUS, FIRST_PAYLOAD)
        assert await theirs.recv() == (Channel.CONSENSUS, FIRST_PAYLOAD)
        await mine.close()
        await theirs.close()
        return proxy.sent
    finally:
        proxy.close()


def build() -> dict[str, Any]:
    certs = {
        side: Certificate.issue(
            ROOT, f"vector-{side}", "vector-org", [Role.CONSENSUS_NODE], key.public_key, 0
        )
        for side, key in IDENTITY.items()
    }
    wire = asyncio.run(asyncio.wait_for(record_handshake(certs), 30))
    hello_i, hello_r = wire["c2s"][0], wire["s2c"][0]
    transcript = tr.transcript_hash(hello_i, hello_r)
    shared = EPHEMERAL["initiator"].exchange(EPHEMERAL["responder"].public_bytes)
    i2r, r2i = tr.traffic_keys(shared, transcript)

    def side(name: str, units: list[bytes]) -> dict[str, Any]:
        return {
            "identity_private_key": IDENTITY[name].to_bytes().hex(),
            "identity_public_key": IDENTITY[name].public_key.to_bytes().hex(),
            "certificate": tr.encode_certificate(certs[name]).hex(),
            "ephemeral_private_key": EPHEMERAL[name]._scalar.hex(),
            "ephemeral_public_key": EPHEMERAL[name].public_bytes.hex(),
            "hello": units[0].hex(),
            "auth_record": units[1].hex(),
            "finish_record": units[2].hex(),
        }

    return {
        "description": (
            "rongxin-p2p/1 handshake and first record (docs/protocol.md), captured on the wire "
            "with fixed identity and ephemeral keys. SM2 signatures are randomized: check "
            "auth records by decrypting them and verifying the signature."
        ),
        "chain_id": CHAIN_ID,
        "genesis_hash": GENESIS_HASH.hex(),
        "root_public_key": ROOT.public_key.to_bytes().hex(),
        "initiator": side("initiator", wire["c2s"]),
        "responder": side("responder", wire["s2c"]),
        "transcript_hash": transcript.hex(),
        "shared_secret": shared.hex(),
        "key_initiator_to_responder": i2r.hex(),
        "key_responder_to_initiator": r2i.hex(),
        "first_record": {
            "from": "initiator",
            "counter": 2,
            "nonce": (2).to_bytes(12, "big").hex(),
            "channel": int(Channel.CONSENSUS),
            "payload": FIRST_PAYLOAD.hex(),
            "record": wire["c2s"][3].hex(),
        },
    }


if __name__ == "__main__":
    PATH.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {PATH}")
