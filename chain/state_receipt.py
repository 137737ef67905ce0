"""Offline-verifiable answers to "what does the ledger's state hold at this key?".

A :class:`StateReceipt` proves, to anyone holding the chain's genesis, the value a key
holds — or that it holds none — in the state of a **committed** block:

1. the block is committed (its header, its certified descendants and a quorum certificate
   of its epoch's validators, each validator set proven from the genesis: exactly a
   receipt's block, :func:`chain.receipt.verify_committed`);
2. every entry of the key's bucket, with the bucket's audit path, hashes to the block's
   state root (:func:`chain.state_tree.verify_bucket_proof`); the key's value is the one
   listed, or there is none when the key is not listed.

A node builds one for its head (:func:`build_state_receipt`); members read contract state
through their node this way (``GET /state/{key}``, :meth:`chain.client.NodeClient.state`)
without trusting the node.

Examples
--------
>>> import tempfile
>>> from chain.localnet import LocalConsortium
>>> from chain.contracts.anchor import anchor_key
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
>>> from chain.types import Role
>>> _ = c.anchor(c.add_member("m", [Role.MEDIA_CENTER]), b"d" * 32, "work")
>>> r = c.replicas[0]
>>> answer = build_state_receipt(r.store, r.app.state, anchor_key(b"d" * 32)).verify(c.genesis)
>>> answer.value is not None, answer.height == r.store.head_height()
(True, True)
>>> build_state_receipt(r.store, r.app.state, b"no such key").verify(c.genesis).value is None
True
>>> c.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.errors import ChainError, MerkleError, ReceiptError
from chain.receipt import (
    _read_document,
    commit_headers,
    epoch_proofs,
    header_hash,
    store_chain_id,
    verify_committed,
)
from chain.state import State
from chain.state_tree import BucketProof, verify_bucket_proof
from chain.store import LedgerStore
from chain.types import Genesis

STATE_FORMAT = "rongxin-state/1"
MAX_KEY_BYTES = 1024
"""Longest state key asked about (contract keys are a prefix and a digest or two)."""
_EPOCH = 11


@dataclass(frozen=True)
class StateAnswer:
    """What a valid state receipt establishes."""

    key: bytes
    value: bytes | None
    """The value at :attr:`key`, or ``None``: the state holds no entry there."""
    height: int
    block_hash: bytes
    block_timestamp_ms: int


@dataclass(frozen=True)
class StateReceipt:
    """The value at one key of a committed block's state, with its proofs (see the module)."""

    chain_id: str
    key: bytes
    bucket: Any
    headers: tuple[Any, ...]
    qc: Any
    epochs: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "chain_id": self.chain_id,
            "key": self.key,
            "bucket": self.bucket,
            "headers": list(self.headers),
            "qc": self.qc,
            "epochs": list(self.epochs),
        }

    def to_bytes(self) -> bytes:
        """Canonical CBOR bytes."""
        return codec.encode(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> StateReceipt:
        """Parse state-receipt bytes; :class:`ReceiptError` (``malformed``) when they are not one."""
        doc = _read_document(
            data,
            STATE_FORMAT,
            "state receipt",
            {"chain_id": str, "key": bytes, "bucket": dict, "headers": list, "qc": list, "epochs": list},
        )
        if len(doc["key"]) > MAX_KEY_BYTES:
            raise ReceiptError("malformed", f"a state key is at most {MAX_KEY_BYTES} bytes")
        return cls(
            doc["chain_id"], doc["key"], doc["bucket"], tuple(doc["headers"]), doc["qc"], tuple(doc["epochs"])
        )

    def claims(self) -> tuple[int, bytes, bytes | None]:
        """What the receipt says, unverified: its block's height and hash, and the value it
        lists at the key (``None``: none). Trust comes only from :meth:`verify`."""
        header = self.headers[0]
        value = next((v for k, v in self.bucket["entries"] if k == self.key), None)
        return int(header[1]), header_hash(header), value

    def verify(self, genesis: Genesis) -> StateAnswer:
        """Check the receipt offline against the chain's genesis.

        Raises
        ------
        ReceiptError
            ``wrong-chain``, ``malformed``, the commit proof's reasons (as
            :func:`chain.receipt.verify_committed`), or ``state`` when the bucket does not
            hash to the block's state root.
        """
        if self.chain_id != genesis.chain_id:
            raise ReceiptError("wrong-chain", f"the receipt is of chain {self.chain_id!r}")
        block = verify_committed(self.headers, self.qc, self.epochs, genesis)
        try:
            proof = BucketProof.from_obj(self.bucket)
        except MerkleError as exc:
            raise ReceiptError("malformed", f"the bucket proof: {exc}") from None
        try:
            value = verify_bucket_proof(block.state_root, self.key, proof)
        except MerkleError as exc:
            raise ReceiptError("state", f"the key's bucket is not in the block's state: {exc}") from None
        return StateAnswer(self.key, value, block.height, block.block_hash, int(block.header[6]))


def build_state_receipt(store: LedgerStore, state: State, key: bytes) -> StateReceipt:
    """The state receipt of ``key`` at the node's head (``state``: the head's state).

    Raises
    ------
    ReceiptError
        ``malformed`` for a key longer than :data:`MAX_KEY_BYTES`; ``not-committed`` when
        ``state`` is not the head's (the node committed meanwhile: ask again) or the head
        has no commit proof yet.
    """
    if len(key) > MAX_KEY_BYTES:
        raise ReceiptError("malformed", f"a state key is at most {MAX_KEY_BYTES} bytes")
    head = store.head_height()
    row = store.block(head)
    if row is None or state.root != row.state_root:
        raise ReceiptError("not-committed", "the node's state is not its head's: ask again")
    try:
        proof = state.bucket_proof(key)
    except (ChainError, ValueError) as exc:
        raise ReceiptError("not-committed", f"cannot prove the state: {exc}") from None
    headers, qc = commit_headers(store, head)
    return StateReceipt(
        store_chain_id(headers[0]),
        key,
        proof.to_obj(),
        tuple(headers),
        qc,
        tuple(epoch_proofs(store, headers[0][_EPOCH])),
    )


__all__ = ["MAX_KEY_BYTES", "STATE_FORMAT", "StateAnswer", "StateReceipt", "build_state_receipt"]
