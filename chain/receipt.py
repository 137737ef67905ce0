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
   validators of the genesis.

Every failure raises :class:`ReceiptError` whose ``reason`` names the check that failed.

Size limit
----------
:data:`MAX_RECEIPT_BYTES` (8 MiB) bounds a receipt file and is checked before anything is
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
from chain.contracts.membership import cert_key
from chain.crypto import CryptoError, PublicKey
from chain.crypto.sm3 import sm3
from chain.epochs import EPOCH_PROOF_META, EpochRecord, epoch_key, genesis_epoch
from chain.errors import ChainError
from chain.merkle import MerkleError, MerkleTree, leaf_hash, verify_inclusion
from chain.replica import node_id
from chain.store import LedgerStore
from chain.types import Certificate, Genesis, Role, Transaction, ValidationError

FORMAT = "rongxin-receipt/1"
MAX_HEADERS = 4096
MAX_RECEIPT_BYTES = 8 * 1024 * 1024
"""Largest encoded receipt accepted by :meth:`Receipt.from_bytes` (checked before decoding)."""
_HEADER_FIELDS = 13
_EPOCH, _COUNT = 11, 12


class ReceiptError(ChainError):
    """A receipt does not prove what it claims; ``reason`` names the failed check."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class VerifiedReceipt:
    """What a valid receipt establishes."""

    tx_id: bytes
    transaction: Transaction
    sender: Certificate
    height: int
    block_hash: bytes
    block_timestamp_ms: int


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
        }

    def to_bytes(self) -> bytes:
        """Canonical CBOR bytes (what ``rongxin verify RECEIPT`` reads)."""
        return codec.encode(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """Parse receipt bytes; :class:`ReceiptError` (``malformed``) when they are not one."""
        if not isinstance(data, (bytes, bytearray)):
            raise ReceiptError("malformed", f"a receipt is bytes, not {type(data).__name__}")
        if len(data) > MAX_RECEIPT_BYTES:
            raise ReceiptError("malformed", f"receipt of {len(data)} bytes exceeds {MAX_RECEIPT_BYTES}")
        try:
            doc = codec.decode(data, max_size=MAX_RECEIPT_BYTES)
        except codec.CodecError as exc:
            raise ReceiptError("malformed", f"not a canonical CBOR receipt ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ReceiptError("malformed", f"not a {FORMAT} document")
        expected = {
            "format",
            "chain_id",
            "tx",
            "index",
            "tree_size",
            "path",
            "headers",
            "qc",
            "sender_certificate",
            "epochs",
        }
        if set(doc) != expected:
            raise ReceiptError("malformed", f"fields must be exactly {sorted(expected)}")
        types = {
            "chain_id": str,
            "tx": bytes,
            "index": int,
            "tree_size": int,
            "path": list,
            "headers": list,
            "qc": list,
            "sender_certificate": dict,
            "epochs": list,
        }
        for name, kind in types.items():
            if not isinstance(doc[name], kind) or isinstance(doc[name], bool):
                raise ReceiptError("malformed", f"field {name!r} must be {kind.__name__}")
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
        )

    def verify(self, genesis: Genesis) -> VerifiedReceipt:
        """Same as :func:`verify_receipt`."""
        return verify_receipt(self, genesis)


def build_receipt(store: LedgerStore, tx_id: bytes) -> Receipt:
    """The receipt of committed transaction ``tx_id`` from a node's store.

    Raises
    ------
    ReceiptError
        ``not-committed`` when the store has no such transaction or no commit proof yet.
    """
    loc = store.tx_location(tx_id)
    if loc is None:
        raise ReceiptError("not-committed", f"transaction {tx_id.hex()} is not committed on this node")
    height, index = loc
    txs = store.transactions(height)
    tree = MerkleTree.from_entries(txs)
    headers, qc = _commit_headers(store, height)
    tx = Transaction.from_bytes(txs[index])
    raw_cert = store.get_state(cert_key(tx.sender))
    if raw_cert is None:
        raise ReceiptError("sender-certificate", "the sender's certificate is not in the node's state")
    epochs = []
    for epoch in range(1, headers[0][_EPOCH] + 1):
        raw_proof = store.get_meta(f"{EPOCH_PROOF_META}{epoch}")
        record = store.get_state(epoch_key(epoch))
        if raw_proof is None or record is None:
            raise ReceiptError("not-committed", f"the store lacks the proof of epoch {epoch}")
        proof = codec.decode(raw_proof)
        ep_headers, ep_qc = _commit_headers(store, proof["height"])
        epochs.append(
            {
                "record": record,
                "index": proof["index"],
                "size": proof["size"],
                "path": proof["path"],
                "headers": ep_headers,
                "qc": ep_qc,
            }
        )
    return Receipt(
        store_chain_id(headers[0]),
        txs[index],
        index,
        tree.size,
        tuple(tree.inclusion_proof(index)),
        tuple(headers),
        qc,
        codec.decode(raw_cert),
        tuple(epochs),
    )


def _commit_headers(store: LedgerStore, height: int) -> tuple[list[Any], Any]:
    """Headers from ``height`` up to the block whose QC proves it committed, and that QC."""
    headers: list[Any] = []
    proof_obj: Any = None
    h = height
    while proof_obj is None:
        row = store.block(h)
        if row is None or h - height >= MAX_HEADERS:
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


def _check_epoch(ep: Any, number: int, keys: Validators, genesis: Genesis) -> Validators:
    what = f"epoch {number} change"
    if not isinstance(ep, dict) or set(ep) != {"record", "index", "size", "path", "headers", "qc"}:
        raise ReceiptError("malformed", f"{what}: fields must be record, index, size, path, headers, qc")
    if (
        not isinstance(ep["record"], bytes)
        or not isinstance(ep["headers"], list)
        or not isinstance(ep["path"], list)
    ):
        raise ReceiptError("malformed", f"{what}: wrong field types")
    if not isinstance(ep["index"], int) or not isinstance(ep["size"], int) or not isinstance(ep["qc"], list):
        raise ReceiptError("malformed", f"{what}: wrong field types")
    try:
        record = EpochRecord.from_bytes(ep["record"])
    except ValidationError as exc:
        raise ReceiptError("epoch", f"{what}: {exc}") from None
    if record.epoch != number:
        raise ReceiptError("epoch", f"{what}: the record is of epoch {record.epoch}")
    _check_commit(ep["headers"], ep["qc"], keys, genesis, number - 1, what)
    ending = ep["headers"][0]
    if ending[1] != record.height:
        raise ReceiptError(
            "epoch", f"{what}: the record names height {record.height}, the block is {ending[1]}"
        )
    leaf = leaf_hash(codec.encode([epoch_key(number), ep["record"]]))
    try:
        verify_inclusion(leaf, ep["index"], ep["size"], list(ep["path"]), ending[5])
    except MerkleError as exc:
        raise ReceiptError("epoch", f"{what}: the record is not in the block's state: {exc}") from None
    return _validators(record.validators, genesis, what)


def verify_receipt(receipt: Receipt, genesis: Genesis) -> VerifiedReceipt:
    """Check a receipt offline against the chain's genesis.

    The validator set of the genesis signs epoch 0; each later epoch is proven by the
    block that ended the previous one (committed under the previous set's signatures) and
    a state inclusion proof of the new set's record under that block's state root.

    Parameters
    ----------
    receipt : Receipt
        From :func:`build_receipt` or :meth:`Receipt.from_bytes`.
    genesis : Genesis
        The chain's founding document (root key and initial validators).

    Returns
    -------
    VerifiedReceipt

    Raises
    ------
    ReceiptError
        With ``reason`` one of ``malformed``, ``wrong-chain``, ``sender-certificate``,
        ``tx-signature``, ``inclusion``, ``header-link``, ``commit-rule``, ``qc-block``,
        ``qc-round``, ``qc-quorum``, ``qc-signer``, ``qc-signature``, ``epoch``.
    """
    if receipt.chain_id != genesis.chain_id:
        raise ReceiptError(
            "wrong-chain", f"receipt is for chain {receipt.chain_id!r}, not {genesis.chain_id!r}"
        )
    keys = _validators(genesis_epoch(genesis).validators, genesis, "genesis")
    if len(receipt.epochs) > MAX_HEADERS:
        raise ReceiptError("malformed", "too many epochs")
    for number, ep in enumerate(receipt.epochs, start=1):
        keys = _check_epoch(ep, number, keys, genesis)
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
    headers = receipt.headers
    hashes = _check_commit(headers, receipt.qc, keys, genesis, len(receipt.epochs), "the block")
    first = headers[0]
    if receipt.tree_size != first[_COUNT]:
        raise ReceiptError(
            "inclusion", f"tree size {receipt.tree_size} ≠ the block's {first[_COUNT]} transactions"
        )
    try:
        verify_inclusion(
            leaf_hash(receipt.tx), receipt.index, receipt.tree_size, list(receipt.path), first[4]
        )
    except MerkleError as exc:
        raise ReceiptError("inclusion", f"inclusion proof fails against the block's tx root: {exc}") from None
    return VerifiedReceipt(tx.tx_id, tx, cert, first[1], hashes[0], first[6])


def verify_anchored_digest(
    receipt: Receipt, genesis: Genesis, digest: bytes, index: int, path: list[bytes] | tuple[bytes, ...]
) -> VerifiedReceipt:
    """Check that ``digest`` was anchored: directly, or as leaf ``index`` of an anchored batch.

    Parameters
    ----------
    receipt : Receipt
        The receipt of the anchor transaction.
    genesis : Genesis
        The chain's founding document.
    digest : bytes
        The digest to prove (e.g. a work's SM3).
    index, path
        Its position and RFC 6962 proof in the batch (``0`` and ``[]`` for a single anchor).

    Raises
    ------
    ReceiptError
        As :func:`verify_receipt`, or ``anchor`` when the transaction does not anchor ``digest``.
    """
    info = verify_receipt(receipt, genesis)
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
