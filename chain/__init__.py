"""Rongxin's consortium ledger: national crypto, BFT consensus, SQLite storage, receipts.

What the package holds today:

* :mod:`chain.crypto` — SM2 signatures and encryption, SM3, SM4, encrypted key files;
* :mod:`chain.codec` — canonical CBOR (one value, one encoding, one hash);
* :mod:`chain.merkle` — RFC 6962 Merkle trees over SM3, inclusion and consistency proofs;
* :mod:`chain.types` — :class:`Certificate`, :class:`Transaction`, :class:`Genesis`,
  :class:`ChainParams`, :class:`Role`;
* :mod:`chain.state`, :mod:`chain.executor`, :mod:`chain.contracts` — the state, the
  deterministic executor and the contract interface (membership, governance, anchoring);
* :mod:`chain.state_tree` — the state commitment (SM3 buckets under an RFC 6962 tree),
  state inclusion proofs and a streaming root for snapshots;
* :mod:`chain.consensus` — a pure, I/O-free 2-chain HotStuff core and its simulator;
* :mod:`chain.epochs` — validator-set changes;
* :mod:`chain.store`, :mod:`chain.replica` — a replica's SQLite ledger and the wiring of
  consensus to the executor;
* :mod:`chain.receipt` — receipts (transaction, inclusion proof, header, quorum
  certificates) and checkpoints, verifiable offline against the genesis;
* :mod:`chain.node` — a node's configuration file (``node.toml``) and identity on disk;
* :mod:`chain.localnet` — a whole consortium in one process (:class:`LocalConsortium`):
  the demo, the tests and the benchmarks run on it. Nodes do not talk over a network yet.

``chain`` imports none of Rongxin's other packages (``docs/architecture.md``). The names
below are imported on first use, so ``import chain`` stays cheap.

Examples
--------
>>> import tempfile
>>> from chain import LocalConsortium, Role, verify_receipt
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
>>> member = c.add_member("County media center", [Role.MEDIA_CENTER])
>>> receipt = c.anchor(member, b"d" * 32, "work")
>>> verify_receipt(receipt, c.genesis).height >= 1
True
>>> c.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain import _native
from chain.errors import ChainError
from chain.lazy import lazy_exports

_native.install()  # the mypyc build of the hot modules, when it matches their sources

if TYPE_CHECKING:
    from chain.codec import CodecError
    from chain.contracts.base import Contract, ContractRegistry, TxContext
    from chain.localnet import Identity, LocalConsortium, LocalNet, LocalNetError
    from chain.merkle import MerkleError, MerkleTree, merkle_root, verify_consistency, verify_inclusion
    from chain.receipt import (
        Checkpoint,
        CheckpointInfo,
        Receipt,
        ReceiptError,
        VerifiedReceipt,
        build_checkpoint,
        build_receipt,
        verify_anchored_digest,
        verify_checkpoint,
        verify_receipt,
    )
    from chain.replica import Replica
    from chain.state_tree import StateProof, commitment_of, verify_state_proof
    from chain.store import LedgerStore, StoreError
    from chain.types import Certificate, ChainParams, Genesis, Role, Transaction, ValidationError

#: Public name -> the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "CodecError": "chain.codec",
    "Contract": "chain.contracts.base",
    "ContractRegistry": "chain.contracts.base",
    "TxContext": "chain.contracts.base",
    "Identity": "chain.localnet",
    "LocalConsortium": "chain.localnet",
    "LocalNet": "chain.localnet",
    "LocalNetError": "chain.localnet",
    "MerkleError": "chain.merkle",
    "MerkleTree": "chain.merkle",
    "merkle_root": "chain.merkle",
    "verify_consistency": "chain.merkle",
    "verify_inclusion": "chain.merkle",
    "Checkpoint": "chain.receipt",
    "CheckpointInfo": "chain.receipt",
    "Receipt": "chain.receipt",
    "ReceiptError": "chain.receipt",
    "VerifiedReceipt": "chain.receipt",
    "build_checkpoint": "chain.receipt",
    "build_receipt": "chain.receipt",
    "verify_anchored_digest": "chain.receipt",
    "verify_checkpoint": "chain.receipt",
    "verify_receipt": "chain.receipt",
    "Replica": "chain.replica",
    "StateProof": "chain.state_tree",
    "commitment_of": "chain.state_tree",
    "verify_state_proof": "chain.state_tree",
    "LedgerStore": "chain.store",
    "StoreError": "chain.store",
    "Certificate": "chain.types",
    "ChainParams": "chain.types",
    "Genesis": "chain.types",
    "Role": "chain.types",
    "Transaction": "chain.types",
    "ValidationError": "chain.types",
}

__all__ = [
    "Certificate",
    "ChainError",
    "ChainParams",
    "Checkpoint",
    "CheckpointInfo",
    "CodecError",
    "Contract",
    "ContractRegistry",
    "Genesis",
    "Identity",
    "LedgerStore",
    "LocalConsortium",
    "LocalNet",
    "LocalNetError",
    "MerkleError",
    "MerkleTree",
    "Receipt",
    "ReceiptError",
    "Replica",
    "Role",
    "StateProof",
    "StoreError",
    "Transaction",
    "TxContext",
    "ValidationError",
    "VerifiedReceipt",
    "build_checkpoint",
    "build_receipt",
    "commitment_of",
    "merkle_root",
    "verify_anchored_digest",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
    "verify_state_proof",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
