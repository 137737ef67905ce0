"""``InProcessLedger``: the :class:`~chain.client.Ledger` protocol over a consortium that
runs in this process (:class:`chain.localnet.LocalConsortium`).

For tests and the embedded demo: transactions go through the in-memory network with its
virtual clock, so a commit takes milliseconds of real time. Receipts come from the first
node's store and are verified against the genesis like a network client's.

Examples
--------
>>> import tempfile
>>> from chain.localnet import LocalConsortium
>>> from chain.types import Role
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
>>> ledger = InProcessLedger(c, c.add_member("Media center", [Role.MEDIA_CENTER]))
>>> first = ledger.anchor(b"d" * 32, "work")
>>> ledger.anchor(b"d" * 32, "work").tx == first.tx  # anchored again: the original receipt
True
>>> [e["tx_type"] for e in ledger.subscribe(["tx"], {"tx_type": "anchor"})]
['anchor', 'anchor']
>>> c.close()
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from chain.client.common import anchor_payload, check_anchors, checked_receipt
from chain.consensus.core import Committed
from chain.errors import ClientError, CommitTimeout, LocalNetError, ReceiptError, ValidationError
from chain.localnet import Identity, LocalConsortium
from chain.node.events import Event, EventFilter, committed_events, parse_kinds, shaped
from chain.receipt import Receipt
from chain.state_receipt import build_state_receipt
from chain.types import Genesis, Transaction

DRAIN_VIRTUAL_MS = 60_000
"""Virtual time :meth:`InProcessLedger.subscribe` runs the network for pending transactions."""


class InProcessLedger:
    """A member's view of an in-process consortium.

    Parameters
    ----------
    consortium : LocalConsortium
        The running consortium.
    member : Identity
        Who signs this client's transactions (its nonce is tracked by the identity).
    node : int
        Which replica answers reads (its store builds receipts and events).
    """

    def __init__(self, consortium: LocalConsortium, member: Identity, node: int = 0) -> None:
        self.consortium = consortium
        self.member = member
        self.genesis: Genesis = consortium.genesis
        self._replica = consortium.replicas[node]
        self._name = consortium.net.name_of(self._replica)
        self._events: list[Event] = []
        self._seen = self._replica.store.head_height()
        consortium.net.on_commit.append(self._on_commit)

    def _on_commit(self, name: str, done: Committed) -> None:
        if name != self._name:
            return
        for height in range(self._seen + 1, done.block.height + 1):
            self._events.extend(committed_events(self._replica.store, height))
        self._seen = max(self._seen, done.block.height)

    def submit(self, tx_bytes: bytes) -> bytes:
        """Give a signed transaction to every live node's mempool; its id (not waited for).

        Raises
        ------
        ValidationError
            With the reason every node refused it.
        """
        return self.consortium.net.submit(tx_bytes)

    def sign(self, type: str, payload: dict[str, Any]) -> Transaction:
        """A transaction of this member (next nonce, the network's clock)."""
        return self.member.sign(self.genesis.chain_id, type, payload, self.consortium.net.now)

    def send(self, type: str, payload: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        """Sign a transaction of this member, submit it and wait for its commit; its id
        and height (as :meth:`chain.client.NodeClient.send` answers)."""
        tx = self.sign(type, payload)
        try:
            self.submit(tx.to_bytes())
        except ValidationError:
            self.member.nonce -= 1  # refused by every node: the nonce is still free
            raise
        height = self.wait(tx.tx_id, timeout_s)
        return {"tx_id": tx.tx_id.hex(), "height": height}

    def state(self, key: bytes) -> bytes | None:
        """The value at state ``key`` in the reading node's committed head (``None``: no
        entry), proven by a state receipt as a node's answer is."""
        store, state = self._replica.store, self._replica.app.state
        try:
            answer = build_state_receipt(store, state, key).verify(self.genesis)
        except ReceiptError as exc:
            raise ClientError(f"cannot prove the state at {key.hex()}: {exc}") from None
        return answer.value

    def anchor(self, digest: bytes, kind: str, meta: bytes | None = None) -> Receipt:
        """Anchor ``digest`` and wait for the commit; the verified (original) receipt."""
        anchor_payload(digest, kind, meta)
        receipt = self.consortium.anchor(self.member, digest, kind, meta)
        checked = checked_receipt(receipt.to_bytes(), self.genesis)
        check_anchors(checked, self.genesis, digest)
        return checked

    def receipt(self, tx_id: bytes) -> Receipt:
        """The verified receipt of committed ``tx_id``.

        Raises
        ------
        ClientError
            Status 404 when the transaction is not committed.
        """
        try:
            receipt = self.consortium.receipt(tx_id)
        except ReceiptError as exc:
            raise ClientError(str(exc), 404) from None
        return checked_receipt(receipt.to_bytes(), self.genesis, tx_id)

    def wait(self, tx_id: bytes, timeout_s: float = 30.0) -> int:
        """Run the network until ``tx_id`` is committed on every live node; its height.

        ``timeout_s`` is in the network's virtual time.

        Raises
        ------
        CommitTimeout
            When the network cannot commit it in that time.
        """
        try:
            self.consortium.net.wait(tx_id, int(timeout_s * 1000))
        except LocalNetError as exc:
            raise CommitTimeout(str(exc), tx_id) from None
        loc = self._replica.store.tx_location(tx_id)
        if loc is None:  # pragma: no cover - wait() returned, so every live node has it
            raise CommitTimeout("the transaction is not committed on the reading node", tx_id)
        return loc[0]

    def subscribe(
        self,
        kinds: Iterable[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        *,
        block_tx_ids: bool = False,
    ) -> Iterator[Event]:
        """Events of the reading node committed since this client was made, then those of
        the transactions still in its mempool as the network commits them (``block``
        events with their ``tx_ids`` when ``block_tx_ids``, as a node's ``/events`` gives).

        The iterator ends when no event is left and the reading node's mempool is empty
        (or its transactions did not commit within :data:`DRAIN_VIRTUAL_MS` of virtual
        time): in one process, nobody else would ever commit a block.
        """
        chosen = parse_kinds(kinds)
        flt = EventFilter.from_dict(filter)
        net = self.consortium.net
        position = 0
        while True:
            while position < len(self._events):
                event = self._events[position]
                position += 1
                if event["type"] in chosen and flt.matches(event):
                    yield shaped(event, block_tx_ids)
            deadline = net.now + DRAIN_VIRTUAL_MS
            while position >= len(self._events) and self._replica.app.mempool and net.now <= deadline:
                if not net.step():
                    return
            if position >= len(self._events):
                return
