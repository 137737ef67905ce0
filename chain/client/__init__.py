"""Clients of the consortium ledger, behind one protocol: :class:`Ledger`.

* :class:`Ledger` / :class:`AsyncLedger` — ``submit``, ``anchor``, ``receipt``, ``wait``,
  ``subscribe``: what code that anchors depends on;
* :class:`InProcessLedger` — over a consortium in this process
  (:class:`chain.localnet.LocalConsortium`): tests and the embedded demo;
* :class:`NodeClient` / :class:`AsyncNodeClient` — over a node's HTTP API with a member's
  signed requests (httpx; events over a WebSocket);
* :class:`SubmitStream` / :class:`AsyncSubmitStream` — batches of signed transactions over
  one WebSocket authenticated once (``NodeClient.submit_stream()``): a steady flow costs
  the node several times less than one signed request per batch;
* :class:`ClientError` — a node's refusal (its reason and HTTP status) or that it could
  not be reached; :class:`AnchoredDigest` — a digest found on chain with its proofs.

Every receipt a client returns verifies offline against the genesis.

Examples
--------
>>> import tempfile
>>> from chain.localnet import LocalConsortium
>>> from chain.types import Role
>>> from chain.client import InProcessLedger
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=4)
>>> ledger = InProcessLedger(c, c.add_member("Media center", [Role.MEDIA_CENTER]))
>>> ledger.anchor(b"d" * 32, "work").verify(c.genesis).height >= 1
True
>>> c.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain.errors import ClientError
from chain.lazy import lazy_exports

if TYPE_CHECKING:
    from chain.client.common import AnchoredDigest
    from chain.client.http import AsyncNodeClient, NodeClient
    from chain.client.inprocess import InProcessLedger
    from chain.client.ledger import AsyncLedger, Ledger
    from chain.client.stream import AsyncSubmitStream, SubmitStream

_LAZY: dict[str, str] = {
    "AnchoredDigest": "chain.client.common",
    "AsyncLedger": "chain.client.ledger",
    "AsyncNodeClient": "chain.client.http",
    "AsyncSubmitStream": "chain.client.stream",
    "InProcessLedger": "chain.client.inprocess",
    "Ledger": "chain.client.ledger",
    "NodeClient": "chain.client.http",
    "SubmitStream": "chain.client.stream",
}

__all__ = [
    "AnchoredDigest",
    "AsyncLedger",
    "AsyncNodeClient",
    "AsyncSubmitStream",
    "ClientError",
    "InProcessLedger",
    "Ledger",
    "NodeClient",
    "SubmitStream",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
