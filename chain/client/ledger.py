"""The ``Ledger`` protocol: what every part of Rongxin that anchors needs from the chain.

Code that anchors evidence (forensics reports, privacy audits, transfers) depends on
:class:`Ledger` only, never on how the chain is reached: :class:`~chain.client.InProcessLedger`
runs a whole consortium in the process (tests, the embedded demo),
:class:`~chain.client.NodeClient` talks to a node over HTTP with signed requests, and
:class:`~chain.client.AsyncNodeClient` is the same for asyncio code (:class:`AsyncLedger`).

Every receipt an implementation returns has been verified offline against its genesis
(:meth:`chain.receipt.Receipt.verify`), so a caller may store it as proof as it is.

Examples
--------
>>> import tempfile
>>> from chain.localnet import LocalConsortium
>>> from chain.types import Role
>>> from chain.client import InProcessLedger
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
>>> ledger: Ledger = InProcessLedger(c, c.add_member("Media center", [Role.MEDIA_CENTER]))
>>> isinstance(ledger, Ledger)
True
>>> ledger.anchor(b"d" * 32, "work").verify(ledger.genesis).transaction.type
'anchor'
>>> c.close()
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from chain.receipt import Receipt
from chain.types import Genesis

Event = dict[str, Any]


@runtime_checkable
class Ledger(Protocol):
    """A consortium ledger as seen by one member.

    Attributes
    ----------
    genesis : Genesis
        The chain's founding document: what receipts are verified against.
    """

    genesis: Genesis

    def submit(self, tx_bytes: bytes) -> bytes:
        """Submit a signed transaction (canonical bytes); its id once the node admitted it.

        Raises
        ------
        ChainError
            :class:`~chain.errors.ClientError` (or :class:`~chain.errors.ValidationError`
            in process) with the reason it was refused.
        """
        ...

    def send(self, type: str, payload: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        """Sign a transaction of this member (next nonce), submit it and wait for its
        commit; at least ``tx_id`` (hex) and ``height``.

        Raises
        ------
        ChainError
            The refusal's reason, or :class:`~chain.errors.CommitTimeout`.
        """
        ...

    def state(self, key: bytes) -> bytes | None:
        """The value at state ``key`` (``None``: no entry) in a committed block's state,
        proven against the genesis (:mod:`chain.state_receipt`)."""
        ...

    def anchor(self, digest: bytes, kind: str, meta: bytes | None = None) -> Receipt:
        """Anchor ``digest`` (32 bytes) for this member and wait for the commit; the
        verified receipt. A digest anchored before returns its original receipt."""
        ...

    def receipt(self, tx_id: bytes) -> Receipt:
        """The verified receipt of committed transaction ``tx_id``."""
        ...

    def wait(self, tx_id: bytes, timeout_s: float = 30.0) -> int:
        """Wait for ``tx_id`` to commit; its height (:class:`~chain.errors.CommitTimeout`)."""
        ...

    def subscribe(
        self, kinds: Iterable[str] | None = None, filter: Mapping[str, Any] | None = None
    ) -> Iterator[Event]:
        """Committed-chain events (:mod:`chain.node.events`) of ``kinds``, ``tx`` events
        passing ``filter``, in commit order."""
        ...


@runtime_checkable
class AsyncLedger(Protocol):
    """:class:`Ledger` for asyncio code (every call awaitable, events an async iterator)."""

    genesis: Genesis

    async def submit(self, tx_bytes: bytes) -> bytes:
        """See :meth:`Ledger.submit`."""
        ...

    async def send(self, type: str, payload: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
        """See :meth:`Ledger.send`."""
        ...

    async def state(self, key: bytes) -> bytes | None:
        """See :meth:`Ledger.state`."""
        ...

    async def anchor(self, digest: bytes, kind: str, meta: bytes | None = None) -> Receipt:
        """See :meth:`Ledger.anchor`."""
        ...

    async def receipt(self, tx_id: bytes) -> Receipt:
        """See :meth:`Ledger.receipt`."""
        ...

    async def wait(self, tx_id: bytes, timeout_s: float = 30.0) -> int:
        """See :meth:`Ledger.wait`."""
        ...

    def subscribe(
        self, kinds: Iterable[str] | None = None, filter: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Event]:
        """See :meth:`Ledger.subscribe`."""
        ...
