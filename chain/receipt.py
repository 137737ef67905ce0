"""Offline-verifiable receipts: transaction + inclusion proof + headers + quorum certificate.

A receipt proves that a transaction is in a **committed** block of a chain, to anyone who
holds the chain's genesis document and nothing else:

1. the transaction is signed (SM2) by a member whose certificate the supervisory root of
   the genesis signed;
2. its RFC 6962 inclusion proof leads to the ``tx_root`` of the first header;
3. the headers hash-link from the transaction's block ``B`` up to a block ``C``;
4. the 2-chain commit rule holds at the top: ``C`` carries a QC for its parent ``X`` in the
   round just before ``C``'s (``C.round == X.round + 1``), and the receipt's QC certifies
   ``C`` — so ``X`` and every ancestor of ``X``, including ``B``, are committed;
5. both QCs carry SM2 signatures of a quorum (``floor((n + f) / 2) + 1``) of distinct
   validators of the block's epoch — the genesis set for epoch 0, each later set proven by
   the block that ended the epoch before it (``epochs``); the block's height lies inside
   its epoch (after the block that started it, and not after the block that ended it when
   a later epoch is in the receipt).

That proves what a quorum of the epoch's validators signed. It cannot prove that their
keys were not stolen later: a revoked validator's leaked key can sign a *backdated* block
of its old epoch. A **checkpoint** (:class:`Checkpoint`: a recent committed header, its
quorum certificate and its epoch's validator set, pinned by the verifier — compared with
what several members publish, as light clients pin a trusted header and Certificate
Transparency monitors compare signed tree heads) closes that gap:
:func:`verify_receipt` with ``checkpoint`` also requires

6. the receipt's epoch chain to agree with the checkpoint's epoch;
7. a block at or above the checkpoint's height to be signed by the checkpoint's validators
   (or their successors, proven from them), and a block below it to be in the chain's
   **history**: every block's state holds the hash of its parent (``sys/block/<h>``), so
   the receipt carries a state inclusion proof of ``[sys/block/<h>, block hash]`` under a
   block at or above the checkpoint, committed by the checkpoint's validators. A receipt
   built before the checkpoint lacks it: rebuild it from any node (:func:`build_receipt`).

Every failure raises :class:`ReceiptError` whose ``reason`` names the check that failed.

Size limit
----------
:data:`MAX_RECEIPT_BYTES` (16 MiB) bounds a receipt or checkpoint file and is checked before anything is
decoded. A receipt for a chain without validator changes is a few kilobytes (one
transaction ≤ 64 KiB, a few headers and two quorum certificates); each validator-set change
adds the epoch record and its commit headers (tens of kilobytes for a hundred validators).

Examples
--------
See :class:`chain.localnet.LocalConsortium` for a receipt made and checked end to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.consensus.core import quorum_size
from chain.consensus.messages import QuorumCertificate, vote_signing_bytes
from chain.contracts.membership import cert_key, history_key
from chain.crypto import CryptoError, PublicKey
from chain.crypto.sm3 import sm3
from chain.epochs import EPOCH_COMMIT_META, EPOCH_PROOF_META, EpochRecord, epoch_key, genesis_epoch
from chain.errors import ChainError
from chain.errors import ReceiptError as ReceiptError  # re-exported under its historical path
from chain.merkle import MerkleError, MerkleTree, leaf_hash, verify_inclusion
from chain.replica import chain_genesis_block, node_id
from chain.state_tree import StateProof, verify_state_proof
from chain.store import LedgerStore
from chain.types import Certificate, Genesis, Role, Transaction, ValidationError

FORMAT = "rongxin-receipt/3"
CHECKPOINT_FORMAT = "rongxin-checkpoint/2"
MAX_RECEIPT_BYTES = 16 * 1024 * 1024
"""Largest receipt or checkpoint file read (headers, QCs and proofs of a long epoch chain)."""
MAX_HEADERS = 4096
SNAPSHOT_COMMIT_META = "snapshot/commit"
"""Store meta key, in a store restored from a snapshot, of the commit headers and QC of its
base block ``{"height", "headers", "qc"}`` (the base block's own row has no commit proof)."""
_HEADER_FIELDS = 13
_EPOCH, _COUNT = 11, 12


@dataclass(frozen=True)
class VerifiedReceipt:
    """What a valid receipt establishes."""

    tx_id: bytes
    transaction: Transaction
    sender: Certificate
    height: int
    block_hash: bytes
    block_timestamp_ms: int


def _read_document(
    data: bytes, fmt: str, what: str, kinds: dict[str, type | tuple[type, ...]]
) -> dict[str, Any]:
    """A canonical CBOR map of format ``fmt`` holding exactly ``kinds``' fields, each of its
    type (never a bool for an int); :class:`ReceiptError` (``malformed``) otherwise."""
    if not isinstance(data, (bytes, bytearray)):
        raise ReceiptError("malformed", f"a {what} is bytes, not {type(data).__name__}")
    if len(data) > MAX_RECEIPT_BYTES:
        raise ReceiptError("malformed", f"{what} of {len(data)} bytes exceeds {MAX_RECEIPT_BYTES}")
    try:
        doc = codec.decode(data, max_size=MAX_RECEIPT_BYTES)
    except codec.CodecError as exc:
        raise ReceiptError("malformed", f"not a canonical CBOR {what} ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ReceiptError("malformed", f"not a {fmt} document")
    expected = {"format", *kinds}
    if set(doc) != expected:
        raise ReceiptError("malformed", f"{what} fields must be exactly {sorted(expected)}")
    for name, kind in kinds.items():
        if not isinstance(doc[name], kind) or isinstance(doc[name], bool):
            raise ReceiptError("malformed", f"{what} field {name!r} has the wrong type")
    return doc


@dataclass(frozen=True)
class Receipt:
    """A committed transaction with everything needed to check it offline."""

    chain_id: str
    tx: bytes
    index: int
    tree_size: int
    path: tuple[bytes, ...]
    headers: tuple[Any, ...]
    qc: Any
    sender_certificate: Any
    epochs: tuple[Any, ...] = ()
    history: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "chain_id": self.chain_id,
            "tx": self.tx,
            "index": self.index,
            "tree_size": self.tree_size,
            "path": list(self.path),
            "headers": list(self.headers),
            "qc": self.qc,
            "sender_certificate": self.sender_certificate,
            "epochs": list(self.epochs),
            "history": self.history,
        }

    def to_bytes(self) -> bytes:
        """Canonical CBOR bytes (what ``rongxin verify RECEIPT`` reads)."""
        return codec.encode(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Parse receipt bytes; :class:`ReceiptError` (``malformed``) when they are not one."""
        doc = _read_document(
            data,
            FORMAT,
            "receipt",
            {
                "chain_id": str,
                "tx": bytes,
                "index": int,
                "tree_size": int,
                "path": list,
                "headers": list,
                "qc": list,
                "sender_certificate": dict,
                "epochs": list,
                "history": (dict, type(None)),
            },
        )
        return cls(
            doc["chain_id"],
            doc["tx"],
            doc["index"],
            doc["tree_size"],
            tuple(doc["path"]),
            tuple(doc["headers"]),
            doc["qc"],
            doc["sender_certificate"],
            tuple(doc["epochs"]),
            doc["history"],
        )

    def verify(self, genesis: Genesis, checkpoint: Checkpoint | None = None) -> VerifiedReceipt:
        """Same as :func:`verify_receipt`."""
        return verify_receipt(self, genesis, checkpoint)


def build_receipt(store: LedgerStore, tx_id: bytes) -> Receipt:
    """The receipt of committed transaction ``tx_id`` from a node's store.

    The receipt carries the epoch proofs up to the node's head and, when the transaction's
    block is below the head, a history proof under the head's state root — so it verifies
    against any checkpoint up to the node's head. Rebuilding an old receipt from a node
    brings it up to the node's head (what a verifier with a newer checkpoint needs).

    Raises
    ------
    ReceiptError
        ``not-committed`` when the store has no such transaction or no commit proof yet
        (the message says so when the node was restored from a snapshot and the
        transaction may be older than it).
    """
    loc = store.tx_location(tx_id)
    if loc is None:
        base = store.base_height()
        since = (
            f"; this node was restored from a snapshot at height {base} and has no transactions "
            "below it: ask a node that has the whole chain"
            if base
            else ""
        )
        raise ReceiptError("not-committed", f"transaction {tx_id.hex()} is not committed on this node{since}")
    height, index = loc
    txs = store.transactions(height)
    tree = MerkleTree.from_entries(txs)
    headers, qc = _commit_headers(store, height)
    tx = Transaction.from_bytes(txs[index])
    raw_cert = store.get_state(cert_key(tx.sender))
    if raw_cert is None:
        raise ReceiptError("sender-certificate", "the sender's certificate is not in the node's state")
    head = store.head_height()
    history: dict[str, Any] | None = None
    top_epoch = headers[0][_EPOCH]
    if height < head:
        head, _, proof = _proof_at_head(store, history_key(height))
        head_headers, head_qc = _commit_headers(store, head)
        history = {"proof": proof, "headers": head_headers, "qc": head_qc}
        top_epoch = max(top_epoch, head_headers[0][_EPOCH])
    return Receipt(
        store_chain_id(headers[0]),
        txs[index],
        index,
        tree.size,
        tuple(tree.inclusion_proof(index)),
        tuple(headers),
        qc,
        codec.decode(raw_cert),
        tuple(_epoch_proofs(store, top_epoch)),
        history,
    )


def epoch_proofs(store: LedgerStore, last: int) -> list[dict[str, Any]]:
    """The proofs of epochs 1..``last`` from a node's store, in the form receipts carry.

    Raises
    ------
    ReceiptError
        ``not-committed`` when the store lacks one (or its block is not committed yet).
    """
    return _epoch_proofs(store, last)


def commit_headers(store: LedgerStore, height: int) -> tuple[list[Any], Any]:
    """The header of block ``height``, its descendants up to the one whose QC proves it
    committed, and that QC, in the form receipts carry (see :func:`verify_committed`).

    Raises
    ------
    ReceiptError
        ``not-committed`` when no commit proof is stored yet; ``pruned`` when the block is
        below the snapshot this node was restored from.
    """
    return _commit_headers(store, height)


def _epoch_proofs(store: LedgerStore, last: int) -> list[dict[str, Any]]:
    """The proofs of epochs 1..``last`` from a node's store."""
    epochs = []
    for epoch in range(1, last + 1):
        raw_proof = store.get_meta(f"{EPOCH_PROOF_META}{epoch}")
        record = store.get_state(epoch_key(epoch))
        if raw_proof is None or record is None:
            raise ReceiptError("not-committed", f"the store lacks the proof of epoch {epoch}")
        proof = codec.decode(raw_proof)
        kept = store.get_meta(f"{EPOCH_COMMIT_META}{epoch}")  # a restored store lacks the blocks
        if kept is not None:
            commit = codec.decode(kept)
            ep_headers, ep_qc = commit["headers"], commit["qc"]
        else:
            ep_headers, ep_qc = _commit_headers(store, proof["height"])
        epochs.append({"record": record, "proof": proof["proof"], "headers": ep_headers, "qc": ep_qc})
    return epochs


@dataclass(frozen=True)
class CommittedBlock:
    """What :func:`verify_committed` establishes: a block of the chain and the epochs proven."""

    height: int
    block_hash: bytes
    header: list[Any]
    records: list[EpochRecord]
    """Epoch records 0..n proven from the genesis (the epochs given)."""

    @property
    def state_root(self) -> bytes:
        """The block's state root."""
        return bytes(self.header[5])

    @property
    def epoch(self) -> int:
        """The epoch the block belongs to (its signers')."""
        return int(self.header[_EPOCH])


def verify_committed(
    headers: Sequence[Any], qc: Any, epochs: Sequence[Any], genesis: Genesis
) -> CommittedBlock:
    """Check offline that the first of ``headers`` is a committed block of ``genesis``'s chain.

    The same checks as a receipt's block (rules 3-5 of the module docstring): ``epochs``
    (as :func:`epoch_proofs` gives) prove each validator set from the genesis, and the
    headers and ``qc`` (as :func:`commit_headers` gives) prove the block committed by a
    quorum of its epoch's validators. A state snapshot is checked this way
    (:mod:`chain.snapshot`).

    Raises
    ------
    ReceiptError
        With the failed check's ``reason`` (as :func:`verify_receipt`).
    """
    try:
        chain = _epoch_chain(epochs, genesis)
        header, block_hash = _committed_block(list(headers), qc, chain, genesis, "the block")
    except ReceiptError:
        raise
    except (ChainError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ReceiptError("malformed", f"the commit proof is malformed: {exc}") from None
    return CommittedBlock(header[1], block_hash, header, chain.records)


_PROOF_TRIES = 4


def _proof_at_head(store: LedgerStore, key: bytes) -> tuple[int, bytes, dict[str, Any]]:
    """The head's height, ``key``'s value and its state proof under the head's state root.

    The node may commit a block while the proof is made (an API thread builds receipts
    while consensus commits): the proof is checked against the head it names, and made
    again under the new head if they differ.
    """
    for _ in range(_PROOF_TRIES):
        head = store.head_height()
        row = store.block(head)
        state = store.load_state()
        value = state.get(key)
        if row is None or value is None:
            raise ReceiptError("not-committed", f"the node's state has no entry at {key!r}")
        try:
            proof = state.prove(key)
            verify_state_proof(row.state_root, key, value, proof)
        except MerkleError:
            continue
        return head, value, proof.to_obj()
    raise ReceiptError("not-committed", "the node kept committing blocks while proving its state; retry")


def _commit_headers(store: LedgerStore, height: int) -> tuple[list[Any], Any]:
    """Headers from ``height`` up to the block whose QC proves it committed, and that QC."""
    headers: list[Any] = []
    proof_obj: Any = None
    h = height
    if store.pruned(height):
        raise ReceiptError(
            "pruned",
            f"block {height} is below height {store.base_height()}, where this node started from a "
            "snapshot: ask a node that has the whole chain",
        )
    while proof_obj is None:
        row = store.block(h)
        if row is None or h - height >= MAX_HEADERS:
            kept = store.get_meta(SNAPSHOT_COMMIT_META)
            if kept is not None and codec.decode(kept)["height"] == height:
                snap = codec.decode(kept)
                return snap["headers"], snap["qc"]
            raise ReceiptError("not-committed", f"no commit proof stored for height {height} yet")
        header = codec.decode(row.block)
        header[-1] = len(store.transactions(h))  # header form: payload count in place of payload
        headers.append(header)
        if row.commit_proof:
            proof_obj = codec.decode(row.commit_proof)
        h += 1
    child, qc, path = proof_obj
    for block in [*path, child]:
        block[-1] = len(block[-1])
        headers.append(block)
    return headers, qc


def store_chain_id(header: Any) -> str:
    """The chain id in a header list."""
    return str(header[0])


def header_hash(header: Any) -> bytes:
    """Block hash from the header form (the same bytes :attr:`Block.hash` covers)."""
    return sm3(codec.encode(header))


def _check_header(h: Any, i: int) -> None:
    if not isinstance(h, list) or len(h) != _HEADER_FIELDS:
        raise ReceiptError("malformed", f"header {i} must be a list of {_HEADER_FIELDS} fields")
    kinds: tuple[type | tuple[type, ...], ...] = (
        str,
        int,
        int,
        bytes,
        bytes,
        bytes,
        int,
        str,
        (list, type(None)),
        (list, type(None)),
        list,
        int,
    )
    for j, kind in enumerate(kinds):
        if not isinstance(h[j], kind) or isinstance(h[j], bool):
            raise ReceiptError("malformed", f"header {i} field {j} has the wrong type")


Validators = dict[str, Certificate]


def _validators(certs: Any, genesis: Genesis, what: str) -> Validators:
    out: Validators = {}
    root = genesis.root_key()
    for c in certs:
        if Role.CONSENSUS_NODE not in c.roles:
            raise ReceiptError("epoch", f"{what}: {c.subject!r} is not a consensus node")
        try:
            c.verify(root)
        except (ValidationError, CryptoError):
            raise ReceiptError(
                "epoch", f"{what}: a validator certificate is not signed by the root"
            ) from None
        out[node_id(c.cert_id)] = c
    if not out:
        raise ReceiptError("epoch", f"{what}: no validators")
    return out


def _check_qc(
    qc_obj: Any, block_hash: bytes, round: int, keys: Validators, genesis: Genesis, epoch: int, what: str
) -> None:
    try:
        qc = QuorumCertificate.from_obj(qc_obj)
    except ChainError as exc:
        raise ReceiptError("malformed", f"{what}: {exc}") from None
    if qc.block_hash != block_hash:
        raise ReceiptError("qc-block", f"{what} certifies another block")
    if qc.round != round:
        raise ReceiptError("qc-round", f"{what} is for round {qc.round}, the block is of round {round}")
    authors = [a for a, _ in qc.signatures]
    if len(set(authors)) != len(authors):
        raise ReceiptError("qc-quorum", f"{what} counts a validator twice")
    unknown = [a for a in authors if a not in keys]
    if unknown:
        raise ReceiptError(
            "qc-signer", f"{what} is signed by {unknown[0][:16]}…, not a validator of epoch {epoch}"
        )
    need = quorum_size(len(keys))
    if len(authors) < need:
        raise ReceiptError("qc-quorum", f"{what} has {len(authors)} signatures, {need} are needed")
    msg = vote_signing_bytes(genesis.chain_id, genesis.hash, qc.round, qc.block_hash, epoch)
    for author, sig in qc.signatures:
        try:
            PublicKey.from_bytes(keys[author].public_key).verify(msg, sig)
        except CryptoError:
            raise ReceiptError("qc-signature", f"{what}: signature of {author[:16]}… is invalid") from None


def _check_commit(
    headers: Sequence[Any], qc: Any, keys: Validators, genesis: Genesis, epoch: int, what: str
) -> list[bytes]:
    """Headers well-formed, of ``epoch``, hash-linked, committed by the 2-chain rule; their hashes."""
    if not 2 <= len(headers) <= MAX_HEADERS:
        raise ReceiptError("malformed", f"{what}: needs the block and a certified descendant")
    for i, h in enumerate(headers):
        _check_header(h, i)
        if h[0] != genesis.chain_id:
            raise ReceiptError("wrong-chain", f"{what}: header {i} belongs to chain {h[0]!r}")
        if h[_EPOCH] != epoch:
            raise ReceiptError("epoch", f"{what}: header {i} is of epoch {h[_EPOCH]}, expected {epoch}")
    hashes = [header_hash(h) for h in headers]
    for i in range(1, len(headers)):
        if headers[i][3] != hashes[i - 1] or headers[i][1] != headers[i - 1][1] + 1:
            raise ReceiptError("header-link", f"{what}: header {i} does not extend header {i - 1}")
    child, parent = headers[-1], headers[-2]
    if child[8] is None or child[2] != parent[2] + 1:
        raise ReceiptError("commit-rule", f"{what}: the top block does not directly certify its parent")
    _check_qc(child[8], hashes[-2], parent[2], keys, genesis, epoch, f"{what}: the parent's QC")
    _check_qc(qc, hashes[-1], child[2], keys, genesis, epoch, f"{what}: the top QC")
    return hashes


def _check_epoch(ep: Any, number: int, keys: Validators, genesis: Genesis) -> EpochRecord:
    what = f"epoch {number} change"
    if not isinstance(ep, dict) or set(ep) != {"record", "proof", "headers", "qc"}:
        raise ReceiptError("malformed", f"{what}: fields must be record, proof, headers, qc")
    if not isinstance(ep["record"], bytes) or not isinstance(ep["headers"], list):
        raise ReceiptError("malformed", f"{what}: wrong field types")
    if not isinstance(ep["qc"], list):
        raise ReceiptError("malformed", f"{what}: wrong field types")
    try:
        record = EpochRecord.from_bytes(ep["record"])
    except ChainError as exc:
        raise ReceiptError("epoch", f"{what}: {exc}") from None
    if record.epoch != number:
        raise ReceiptError("epoch", f"{what}: the record is of epoch {record.epoch}")
    _check_commit(ep["headers"], ep["qc"], keys, genesis, number - 1, what)
    ending = ep["headers"][0]
    if ending[1] != record.height:
        raise ReceiptError(
            "epoch", f"{what}: the record names height {record.height}, the block is {ending[1]}"
        )
    _check_state_entry(epoch_key(number), ep["record"], ep["proof"], ending[5], "epoch", what)
    return record


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_state_entry(key: bytes, value: bytes, proof: Any, root: Any, reason: str, what: str) -> None:
    """``[key, value]`` is in the state whose root is ``root`` (``proof``: a
    :meth:`~chain.state_tree.StateProof.to_obj` map)."""
    try:
        state_proof = StateProof.from_obj(proof)
    except MerkleError as exc:
        raise ReceiptError("malformed", f"{what}: {exc}") from None
    try:
        verify_state_proof(root, key, value, state_proof)
    except (MerkleError, TypeError, ValueError) as exc:
        raise ReceiptError(reason, f"{what}: the entry is not in the block's state: {exc}") from None


@dataclass(frozen=True)
class _Chain:
    """What a receipt's epoch proofs establish: each epoch's record and validators."""

    records: list[EpochRecord]
    keys: list[Validators]

    def check_height(self, epoch: int, height: int, what: str) -> None:
        """``height`` lies inside ``epoch`` as far as the proofs tell."""
        if height <= self.records[epoch].height:
            raise ReceiptError("epoch", f"{what}: height {height} is not after the start of epoch {epoch}")
        if epoch + 1 < len(self.records) and height > self.records[epoch + 1].height:
            raise ReceiptError(
                "epoch",
                f"{what}: height {height} is after the end of epoch {epoch} "
                f"(height {self.records[epoch + 1].height})",
            )


def _epoch_chain(receipt_epochs: Sequence[Any], genesis: Genesis) -> _Chain:
    if len(receipt_epochs) > MAX_HEADERS:
        raise ReceiptError("malformed", "too many epochs")
    first = genesis_epoch(genesis)
    records = [first]
    keys = [_validators(first.validators, genesis, "genesis")]
    for number, ep in enumerate(receipt_epochs, start=1):
        record = _check_epoch(ep, number, keys[-1], genesis)
        if record.height < records[-1].height:
            raise ReceiptError("epoch", f"epoch {number} change: it starts before epoch {number - 1}")
        records.append(record)
        keys.append(_validators(record.validators, genesis, f"epoch {number} change"))
    return _Chain(records, keys)


def _committed_block(headers: Any, qc: Any, chain: _Chain, genesis: Genesis, what: str) -> tuple[Any, bytes]:
    """Check that the first of ``headers`` is committed in its epoch; its header and hash."""
    if not isinstance(headers, (list, tuple)) or not headers or not isinstance(headers[0], list):
        raise ReceiptError("malformed", f"{what}: needs the block and a certified descendant")
    _check_header(headers[0], 0)
    epoch = headers[0][_EPOCH]
    if epoch >= len(chain.keys):
        raise ReceiptError(
            "epoch",
            f"{what}: the block is of epoch {epoch}, the receipt proves epochs 0..{len(chain.keys) - 1}",
        )
    hashes = _check_commit(headers, qc, chain.keys[epoch], genesis, epoch, what)
    chain.check_height(epoch, headers[0][1], what)
    return headers[0], hashes[0]


def verify_receipt(
    receipt: Receipt, genesis: Genesis, checkpoint: Checkpoint | None = None
) -> VerifiedReceipt:
    """Check a receipt offline against the chain's genesis (and a pinned checkpoint).

    The validator set of the genesis signs epoch 0; each later epoch is proven by the
    block that ended the previous one (committed under the previous set's signatures) and
    a state inclusion proof of the new set's record under that block's state root.

    Parameters
    ----------
    receipt : Receipt
        From :func:`build_receipt` or :meth:`Receipt.from_bytes`.
    genesis : Genesis
        The chain's founding document (root key and initial validators).
    checkpoint : Checkpoint, optional
        A recent committed header the verifier trusts (:func:`build_checkpoint`). With it,
        a block signed by keys that were revoked (and may have leaked) since is refused
        unless the chain's history under a block at or above the checkpoint names it.

    Returns
    -------
    VerifiedReceipt

    Raises
    ------
    ReceiptError
        With ``reason`` one of ``malformed``, ``wrong-chain``, ``sender-certificate``,
        ``tx-signature``, ``inclusion``, ``header-link``, ``commit-rule``, ``qc-block``,
        ``qc-round``, ``qc-quorum``, ``qc-signer``, ``qc-signature``, ``epoch``,
        ``history``, ``checkpoint``.

    Examples
    --------
    See :class:`chain.localnet.LocalConsortium` for a receipt made and checked end to end.
    """
    try:
        return _verify_receipt(receipt, genesis, checkpoint)
    except ReceiptError:
        raise
    except (ChainError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        # every structural check above should catch malformed input first; this is the net
        raise ReceiptError("malformed", f"the receipt is malformed: {exc}") from None


def _verify_receipt(receipt: Receipt, genesis: Genesis, checkpoint: Checkpoint | None) -> VerifiedReceipt:
    if receipt.chain_id != genesis.chain_id:
        raise ReceiptError(
            "wrong-chain", f"receipt is for chain {receipt.chain_id!r}, not {genesis.chain_id!r}"
        )
    chain = _epoch_chain(receipt.epochs, genesis)
    # 1. the transaction and its sender
    try:
        cert = Certificate.from_dict(receipt.sender_certificate)
        cert.verify(genesis.root_key())
    except (ValidationError, CryptoError) as exc:
        raise ReceiptError(
            "sender-certificate", f"sender certificate is not signed by the root: {exc}"
        ) from None
    try:
        tx = Transaction.from_bytes(receipt.tx)
    except ValidationError as exc:
        raise ReceiptError("malformed", f"transaction: {exc}") from None
    if tx.sender != cert.cert_id:
        raise ReceiptError("sender-certificate", "the certificate is not the transaction's sender")
    try:
        tx.verify_signature(cert.key(), genesis.chain_id)
    except (CryptoError, ValidationError) as exc:
        raise ReceiptError("tx-signature", f"transaction signature is invalid: {exc}") from None
    # 2.-5. the block, its commitment and the quorum
    first, block_hash = _committed_block(receipt.headers, receipt.qc, chain, genesis, "the block")
    if not _is_int(receipt.tree_size) or receipt.tree_size != first[_COUNT]:
        raise ReceiptError(
            "inclusion", f"tree size {receipt.tree_size} ≠ the block's {first[_COUNT]} transactions"
        )
    try:
        verify_inclusion(
            leaf_hash(receipt.tx), receipt.index, receipt.tree_size, list(receipt.path), first[4]
        )
    except (MerkleError, TypeError, ValueError) as exc:
        raise ReceiptError("inclusion", f"inclusion proof fails against the block's tx root: {exc}") from None
    # history: the block is an ancestor of a later committed block
    anchor: tuple[Any, bytes] | None = None
    history = receipt.history
    if history is not None:
        if set(history) != {"proof", "headers", "qc"}:
            raise ReceiptError("malformed", "history: fields must be proof, headers, qc")
        anchor = _committed_block(history["headers"], history["qc"], chain, genesis, "the history block")
        if anchor[0][1] <= first[1]:
            raise ReceiptError("history", "the history block is not above the receipt's block")
        _check_state_entry(
            history_key(first[1]),
            block_hash,
            history["proof"],
            anchor[0][5],
            "history",
            "the block's history",
        )
    if checkpoint is not None:
        _check_against(checkpoint, genesis, chain, first, block_hash, anchor)
    return VerifiedReceipt(tx.tx_id, tx, cert, first[1], block_hash, first[6])


def _check_against(
    cp: Checkpoint,
    genesis: Genesis,
    chain: _Chain,
    first: Any,
    block_hash: bytes,
    anchor: tuple[Any, bytes] | None,
) -> None:
    """Rules 6 and 7 of the module docstring."""
    info = verify_checkpoint(cp, genesis)
    if info.epoch >= len(chain.records):
        raise ReceiptError(
            "checkpoint",
            f"the receipt proves epochs up to {len(chain.records) - 1}, the checkpoint is in epoch "
            f"{info.epoch}: rebuild the receipt from a node that has the checkpoint's block",
        )
    if chain.records[info.epoch].to_bytes() != info.record.to_bytes():
        raise ReceiptError(
            "checkpoint", f"the receipt's epoch {info.epoch} differs from the checkpoint's: not this chain"
        )
    for record in chain.records[info.epoch + 1 :]:
        if record.height < info.height:
            raise ReceiptError("checkpoint", f"epoch {record.epoch} starts below the checkpoint")
    if first[1] >= info.height:
        if first[_EPOCH] < info.epoch or (first[1] == info.height and block_hash != info.block_hash):
            raise ReceiptError("checkpoint", "the block conflicts with the checkpoint")
        return
    if anchor is None:
        raise ReceiptError(
            "history",
            f"the block (height {first[1]}) is below the checkpoint (height {info.height}) and the "
            "receipt carries no history under a later block: rebuild the receipt from a node",
        )
    top, top_hash = anchor
    if top[1] < info.height:
        raise ReceiptError(
            "history",
            f"the receipt's history reaches height {top[1]}, below the checkpoint's {info.height}: "
            "rebuild the receipt from a node",
        )
    if top[1] == info.height and top_hash != info.block_hash:
        raise ReceiptError("checkpoint", "the history block conflicts with the checkpoint")
    if top[_EPOCH] < info.epoch:
        raise ReceiptError("checkpoint", "the history block is of an epoch before the checkpoint's")


# --------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint states: a committed block and the validators of its epoch."""

    height: int
    block_hash: bytes
    epoch: int
    record: EpochRecord
    timestamp_ms: int

    @property
    def digest(self) -> str:
        """Hex of the block hash: what verifiers compare with members' published checkpoints."""
        return self.block_hash.hex()


@dataclass(frozen=True)
class Checkpoint:
    """A committed header with its quorum certificate and its epoch's validator set.

    The verifier *pins* it: takes it from its own node, or from several members and
    checks that they publish the same block hash (:attr:`CheckpointInfo.digest`).
    """

    chain_id: str
    genesis_hash: bytes
    headers: tuple[Any, ...]
    qc: Any
    record: bytes
    proof: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "chain_id": self.chain_id,
            "genesis_hash": self.genesis_hash,
            "headers": list(self.headers),
            "qc": self.qc,
            "record": self.record,
            "proof": self.proof,
        }

    def to_bytes(self) -> bytes:
        """Canonical CBOR bytes (what ``rongxin verify --checkpoint`` reads)."""
        return codec.encode(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Parse checkpoint bytes; :class:`ReceiptError` (``malformed``) when they are not one."""
        doc = _read_document(
            data,
            CHECKPOINT_FORMAT,
            "checkpoint",
            {
                "chain_id": str,
                "genesis_hash": bytes,
                "headers": list,
                "qc": list,
                "record": bytes,
                "proof": (dict, type(None)),
            },
        )
        return cls(
            doc["chain_id"],
            doc["genesis_hash"],
            tuple(doc["headers"]),
            doc["qc"],
            doc["record"],
            doc["proof"],
        )


def build_checkpoint(store: LedgerStore, genesis: Genesis) -> Checkpoint:
    """A checkpoint at the committed head of a node of ``genesis``'s chain.

    Raises
    ------
    ReceiptError
        ``not-committed`` when the node has committed nothing yet; ``wrong-chain`` when
        the store belongs to another genesis.
    """
    if store.genesis_hash != chain_genesis_block(genesis).hash:
        raise ReceiptError("wrong-chain", "this ledger store belongs to another genesis")
    if store.head_height() < 1:
        raise ReceiptError("not-committed", "the node has committed no block yet")
    for _ in range(_PROOF_TRIES):
        head = store.head_height()
        headers, qc = _commit_headers(store, head)
        epoch = headers[0][_EPOCH]
        if epoch == 0:
            return Checkpoint(store_chain_id(headers[0]), genesis.hash, tuple(headers), qc, b"", None)
        if store.get_state(epoch_key(epoch)) is None:
            raise ReceiptError("not-committed", f"the node's state lacks the record of epoch {epoch}")
        proven_head, record, proof = _proof_at_head(store, epoch_key(epoch))
        if proven_head == head:  # else a block committed meanwhile: take the new head
            return Checkpoint(store_chain_id(headers[0]), genesis.hash, tuple(headers), qc, record, proof)
    raise ReceiptError("not-committed", "the node kept committing blocks while checkpointing; retry")


def verify_checkpoint(cp: Checkpoint, genesis: Genesis) -> CheckpointInfo:
    """Check that a checkpoint is a committed block of ``genesis``'s chain as it claims.

    A checkpoint is trusted because the verifier pinned it; this checks that it is
    internally consistent: the genesis it names, the quorum certificate of its epoch's
    validators over its block, and its epoch record in the block's state.

    Raises
    ------
    ReceiptError
        ``checkpoint`` (or ``malformed``) with what is wrong.
    """
    if cp.chain_id != genesis.chain_id or cp.genesis_hash != genesis.hash:
        raise ReceiptError("checkpoint", "the checkpoint belongs to another chain or genesis")
    if not cp.headers or not isinstance(cp.headers[0], list):
        raise ReceiptError("malformed", "the checkpoint has no header")
    _check_header(cp.headers[0], 0)
    epoch = cp.headers[0][_EPOCH]
    if epoch == 0:
        if cp.record or cp.proof is not None:
            raise ReceiptError("checkpoint", "an epoch-0 checkpoint carries no epoch record")
        record = genesis_epoch(genesis)
    else:
        try:
            record = EpochRecord.from_bytes(cp.record)
        except ChainError as exc:
            raise ReceiptError("checkpoint", f"the checkpoint's epoch record: {exc}") from None
        if record.epoch != epoch:
            raise ReceiptError("checkpoint", f"the record is of epoch {record.epoch}, the block of {epoch}")
        _check_state_entry(
            epoch_key(epoch),
            cp.record,
            cp.proof,
            cp.headers[0][5],
            "checkpoint",
            "the checkpoint's epoch record",
        )
    keys = _validators(record.validators, genesis, "the checkpoint's epoch")
    hashes = _check_commit(list(cp.headers), cp.qc, keys, genesis, epoch, "the checkpoint")
    if cp.headers[0][1] <= record.height:
        raise ReceiptError("checkpoint", "the checkpoint's block is not inside its epoch")
    return CheckpointInfo(cp.headers[0][1], hashes[0], epoch, record, cp.headers[0][6])


def verify_anchored_digest(
    receipt: Receipt,
    genesis: Genesis,
    digest: bytes,
    index: int,
    path: list[bytes] | tuple[bytes, ...],
    checkpoint: Checkpoint | None = None,
) -> VerifiedReceipt:
    """Check that ``digest`` was anchored: directly, or as leaf ``index`` of an anchored batch.

    Parameters
    ----------
    receipt : Receipt
        The receipt of the anchor transaction.
    genesis : Genesis
        The chain's founding document.
    checkpoint : Checkpoint, optional
        A pinned recent checkpoint (see :func:`verify_receipt`).
    digest : bytes
        The digest to prove (e.g. a work's SM3).
    index, path
        Its position and RFC 6962 proof in the batch (``0`` and ``[]`` for a single anchor).

    Raises
    ------
    ReceiptError
        As :func:`verify_receipt`, or ``anchor`` when the transaction does not anchor ``digest``.
    """
    info = verify_receipt(receipt, genesis, checkpoint)
    tx = info.transaction
    if tx.type != "anchor":
        raise ReceiptError("anchor", f"the receipt's transaction is a {tx.type!r}, not an anchor")
    anchored = tx.payload.get("digest")
    count = tx.payload.get("count")
    if count is None:
        if anchored != digest or index != 0 or path:
            raise ReceiptError("anchor", "the transaction anchors another digest")
        return info
    try:
        verify_inclusion(leaf_hash(digest), index, count, list(path), anchored)  # type: ignore[arg-type]
    except MerkleError as exc:
        raise ReceiptError("anchor", f"the digest is not in the anchored batch: {exc}") from None
    return info
