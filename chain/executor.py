"""Deterministic execution of transactions against the ledger state.

Every node runs the same checks in the same order, so a block is either valid for all
honest nodes or for none:

1. the transaction decodes canonically and is within size limits;
2. its sender certificate is registered and not revoked at this height (revocation
   applies from the height after the revoking transaction), and the block time is inside
   the certificate's validity window;
3. its nonce is exactly the sender's last one plus one (no replay, no reordering: a
   transaction waits for its predecessors, so none is ever dropped for being late);
4. its SM2 signature (bound to the chain id) verifies — each transaction is verified once
   per node and remembered;
5. a contract handles its type and one of the sender's roles is permitted;
6. the contract's payload check, authorization and ``apply`` succeed.

A block that contains any invalid transaction is invalid as a whole; a leader uses
:meth:`Executor.select` to build blocks from valid transactions only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chain import codec
from chain.contracts.anchor import AnchorContract
from chain.contracts.base import ContractRegistry, TxContext
from chain.contracts.governance import MemberVote, NodeReady, PromoteNode, RevokeMember
from chain.contracts.membership import AddMember, cert_key, load_certificate, revoked_from, validator_key
from chain.crypto import PublicKey
from chain.crypto.sm3 import sm3
from chain.errors import NonceGapError as NonceGapError  # re-exported under its historical path
from chain.state import Overlay, State
from chain.types import Genesis, Role, Transaction, ValidationError
from chain.vault.contract import register_contracts as register_vault

NONCE = b"nonce/"


def next_nonce(state: State | Overlay, sender: bytes) -> int:
    """The nonce the sender's next transaction must carry."""
    last = state.get(NONCE + sender)
    return 1 if last is None else int.from_bytes(last, "big") + 1


_SIG_CACHE = 200_000
"""Transaction ids whose signature a node remembers (good and bad ones, each): at least
twice the default mempool, so that a transaction verified at admission is still known when
its block executes, even behind a full pool."""
_DECODE_CACHE = 16_384
"""Decoded transactions a node keeps (about 1.3 kB each with their bytes): those of the
next blocks. Committed ones leave at once (:meth:`Executor.forget`); a deeper mempool is
decoded again when its turn comes (tens of microseconds against a signature check's
hundreds), instead of holding a decoded copy of every pending transaction."""


@dataclass(frozen=True)
class BlockExecution:
    """Result of executing one block's transactions."""

    changes: dict[bytes, bytes | None]
    results: list[dict[str, Any]]
    state_root: bytes


def default_registry(genesis: Genesis) -> ContractRegistry:
    """A registry with the built-in contracts (membership, governance, anchoring, vault)."""
    reg = ContractRegistry()
    reg.register(AddMember(genesis.root_key()))
    reg.register(RevokeMember(genesis))
    reg.register(PromoteNode(genesis))
    reg.register(NodeReady())
    reg.register(MemberVote(genesis, genesis.root_key()))
    reg.register(AnchorContract())
    register_vault(reg)
    return reg


def genesis_state(genesis: Genesis) -> State:
    """The state at height 0: every genesis certificate registered, its consensus nodes voting."""
    genesis.validate()
    entries = {cert_key(c.cert_id): codec.encode(c.to_dict()) for c in genesis.certificates}
    for c in genesis.certificates:
        if Role.CONSENSUS_NODE in c.roles:
            entries[validator_key(c.cert_id)] = codec.encode({"from_height": 0})
    return State(entries)


class Executor:
    """Validates and applies transactions for one chain.

    Examples
    --------
    >>> from chain.types import Certificate, Role
    >>> from chain.crypto import PrivateKey
    >>> root = PrivateKey.generate(); user = PrivateKey.generate()
    >>> cert = Certificate.issue(root, "County", "c1", [Role.MEDIA_CENTER], user.public_key, 0)
    >>> g = Genesis("Demo", "demo", root.public_key.to_bytes(), (cert,))
    >>> ex = Executor(g); state = genesis_state(g)
    >>> tx = Transaction.create(user, cert.cert_id, "anchor", {"digest": b"d" * 32, "kind": "work"},
    ...                         nonce=1, timestamp_ms=5, chain_id="demo")
    >>> ex.execute(state, [tx.to_bytes()], height=1, timestamp_ms=10).results[0]["status"]
    'anchored'
    """

    def __init__(
        self, genesis: Genesis, registry: ContractRegistry | None = None, verified_cache: int = _SIG_CACHE
    ) -> None:
        self.genesis = genesis
        self.registry = registry if registry is not None else default_registry(genesis)
        self.verified_cache = verified_cache
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._forged: OrderedDict[bytes, str] = OrderedDict()
        self._decoded: OrderedDict[bytes, Transaction] = OrderedDict()
        self.verifications = 0
        """SM2 transaction-signature verifications this executor ran (for metrics)."""

    def decode(self, raw: bytes) -> Transaction:
        """``Transaction.from_bytes`` with a bounded cache (a node decodes each tx several times)."""
        tx = self._decoded.get(raw)
        if tx is None:
            tx = Transaction.from_bytes(raw)
            self._decoded[raw] = tx
            if len(self._decoded) > _DECODE_CACHE:
                self._decoded.popitem(last=False)
        return tx

    def tx_id_of(self, raw: bytes) -> bytes:
        """The id ``raw`` has if it is a transaction: the SM3 of its bytes (a decoded
        transaction's id is exactly that), taken from the decode cache when it is there."""
        tx = self._decoded.get(raw)
        return tx.tx_id if tx is not None else sm3(raw)

    def apply_one(
        self,
        state: Overlay,
        raw: bytes,
        height: int,
        timestamp_ms: int,
        *,
        verify: bool = True,
        check_only: bool = False,
    ) -> dict[str, Any]:
        """Check and apply one transaction on ``state`` (an overlay); its contract's result.

        ``verify=False`` skips the signature check (see :meth:`execute`'s
        ``trust_signatures``); every other check is made. ``check_only=True`` (admission to
        the mempool) stops after the contract's ``authorize`` when the contract declares
        that its ``apply`` never refuses a transaction that got that far
        (``apply_never_refuses``, see :class:`~chain.contracts.base.Contract`): ``state``
        is then left unchanged and the result is empty. Other contracts are applied in
        full, so their refusals are still found at admission.

        Raises
        ------
        ValidationError
            Why the transaction is refused; :class:`NonceGapError` (with ``expected``) when
            it must wait for its sender's earlier transactions.
        """
        tx = self.decode(raw)
        cert = load_certificate(state, tx.sender)
        if cert is None:
            raise ValidationError("sender certificate is not registered on this chain")
        rev = revoked_from(state, tx.sender)
        if rev is not None and height >= rev:
            raise ValidationError(f"sender certificate is revoked from height {rev}")
        if not cert.valid_at(timestamp_ms):
            raise ValidationError("sender certificate is not valid at this block's time")
        last = state.get(NONCE + tx.sender)
        expected = 1 if last is None else int.from_bytes(last, "big") + 1
        if tx.nonce < expected:
            raise ValidationError(f"nonce {tx.nonce} already used (replayed transaction; next is {expected})")
        if tx.nonce > expected:
            raise NonceGapError(f"nonce {tx.nonce} is ahead of the sender's next nonce {expected}", expected)
        tx_id = tx.tx_id
        if verify and tx_id not in self._verified:
            self._verify(tx, cert.key())
        contract = self.registry.get(tx.type)
        if not set(cert.roles) & contract.permitted_roles:
            raise ValidationError(
                f"roles {[r.value for r in cert.roles]} may not send {tx.type!r} transactions"
            )
        contract.check_payload(tx.payload)
        ctx = TxContext(cert, tx_id, height, timestamp_ms, self.genesis.params, self.genesis.chain_id)
        contract.authorize(ctx, tx.payload, state)
        if check_only and getattr(contract, "apply_never_refuses", False):
            return {}
        result = contract.apply(state, ctx, tx.payload)
        state.set(NONCE + tx.sender, tx.nonce.to_bytes(8, "big"))
        return result

    def _prefetch(self, state: Overlay, txs: list[bytes]) -> None:
        """Have ``state`` read ahead the keys these transactions' contracts say they read
        (a contract's optional ``reads``: :class:`~chain.contracts.base.Contract`), in a few
        reads instead of one per transaction. A transaction that does not decode, or has
        no contract, is skipped here and refused in its turn; a contract's ``reads`` that
        fails, or names something other than bytes, only goes without reading ahead."""
        keys: list[bytes] = []
        for raw in txs:
            try:
                tx = self.decode(raw)
                contract = self.registry.get(tx.type)
            except ValidationError:
                continue
            reads = getattr(contract, "reads", None)
            if reads is None:
                continue
            try:
                named = reads(tx.payload)
                keys.extend(k for k in named if type(k) is bytes)
            except Exception:  # a hint that fails is no hint: apply decides
                continue
        if keys:
            state.prefetch(keys)

    def _verify(self, tx: Transaction, key: PublicKey) -> None:
        """Check ``tx``'s signature once: the outcome, good or bad, is remembered by id (the id
        fixes the bytes, the sender's certificate and so its key; the chain id is this one's)."""
        tx_id = tx.tx_id
        reason = self._forged.get(tx_id)
        if reason is not None:
            raise ValidationError(reason)
        self.verifications += 1
        try:
            tx.verify_signature(key, self.genesis.chain_id)
        except ValidationError as exc:
            self._forged[tx_id] = str(exc)
            if len(self._forged) > self.verified_cache:
                self._forged.popitem(last=False)
            raise
        self._verified[tx_id] = None
        if len(self._verified) > self.verified_cache:
            self._verified.popitem(last=False)

    def record_verification(self, tx_id: bytes, reason: str | None) -> None:
        """Remember the outcome of a signature check made elsewhere (the node host checks
        batches in a worker thread): ``None`` when it verified, else why it did not."""
        if reason is None:
            self._forged.pop(tx_id, None)
            self._verified[tx_id] = None
            if len(self._verified) > self.verified_cache:
                self._verified.popitem(last=False)
        else:
            self._forged[tx_id] = reason
            if len(self._forged) > self.verified_cache:
                self._forged.popitem(last=False)

    def forget(self, raws: Sequence[bytes]) -> None:
        """Drop committed transactions from the decode and signature caches.

        A committed transaction is never executed again (its nonce is used), so keeping its
        decoded form and its verification only costs memory: about 1.5 kB per transaction,
        which grew a node by hundreds of megabytes over a few hundred thousand
        transactions. A later copy (a stale gossip, a replayed submission) is decoded and
        refused for its nonce as usual.
        """
        decoded = self._decoded
        verified = self._verified
        for raw in raws:
            tx = decoded.pop(raw, None)
            if tx is not None:  # one not decoded here is left to age out of the bounded cache
                verified.pop(tx.tx_id, None)

    def is_verified(self, tx_id: bytes) -> bool:
        """Whether this executor verified ``tx_id``'s signature recently (and remembers it)."""
        return tx_id in self._verified

    def execute(
        self,
        state: State | Overlay,
        txs: list[bytes],
        height: int,
        timestamp_ms: int,
        finalize: Callable[[Overlay], None] | None = None,
        begin: Callable[[Overlay], None] | None = None,
        trust_signatures: bool = False,
    ) -> BlockExecution:
        """Apply every transaction of a block; raise :class:`ValidationError` if any is invalid.

        ``trust_signatures`` skips the transactions' signature checks: an observer may,
        because it commits a block only under a quorum certificate chain, so more than
        ``f`` honest validators checked every signature of what it commits. Validators
        never trust.

        ``begin`` and ``finalize`` (optional) run before and after the transactions, on the
        same overlay: the ledger's start-of-block (history) and end-of-block bookkeeping
        (evidence, missed turns, validator-set epochs).
        """
        overlay = Overlay(state)
        if begin is not None:
            begin(overlay)
        self._prefetch(overlay, txs)
        results = []
        verify = not trust_signatures
        # straight on the block's overlay: one refused transaction refuses the whole block,
        # so nothing of a failed one needs undoing (Executor.select keeps a child per try)
        for i, raw in enumerate(txs):
            try:
                results.append(self.apply_one(overlay, raw, height, timestamp_ms, verify=verify))
            except ValidationError as exc:
                raise ValidationError(f"transaction {i} of block {height}: {exc}") from None
        return self.finish(overlay, results, finalize)

    def finish(
        self,
        overlay: Overlay,
        results: list[dict[str, Any]],
        finalize: Callable[[Overlay], None] | None = None,
    ) -> BlockExecution:
        """End a block whose transactions were applied on ``overlay`` (with ``results``):
        the end-of-block bookkeeping, then the changes and the state root.

        :meth:`execute` ends with it; a node that has already applied a block's
        transactions (the proposer, while choosing them) ends the block without running
        them again. ``overlay`` is changed by ``finalize``.
        """
        if finalize is not None:
            finalize(overlay)
        return BlockExecution(overlay.changes(), results, overlay.root())

    def select(
        self,
        state: State | Overlay,
        candidates: list[bytes],
        height: int,
        timestamp_ms: int,
        max_txs: int,
        max_bytes: int,
        begin: Callable[[Overlay], None] | None = None,
    ) -> tuple[list[bytes], list[tuple[bytes, str]]]:
        """Choose the valid candidates that fit in a block; returns (chosen, rejected with reasons).

        ``begin`` is the start-of-block bookkeeping :meth:`execute` will run before them.
        """
        overlay = Overlay(state)
        if begin is not None:
            begin(overlay)
        self._prefetch(overlay, candidates[:max_txs])
        chosen: list[bytes] = []
        rejected: list[tuple[bytes, str]] = []
        size = 0
        for raw in candidates:
            if len(chosen) >= max_txs or size + len(raw) > max_bytes:
                break
            child = overlay.child()
            try:
                self.apply_one(child, raw, height, timestamp_ms)
            except ValidationError as exc:
                rejected.append((raw, str(exc)))
                continue
            overlay.merge_child(child)
            chosen.append(raw)
            size += len(raw)
        return chosen, rejected
