"""What the explorer reads from the member's node, through the SDK's ``NodeClient``.

Committed blocks never change, so they are kept in a bounded cache by height; the head,
transactions and anchors are asked afresh. Receipts and anchored digests are verified by
the SDK against the genesis before they are shown (the node is not trusted). A node that
cannot answer becomes a :class:`ChainUnavailable` the pages show as a message.

:func:`classify_query` (pure) decides what a search string can be.

Examples
--------
>>> classify_query(" 42 "), classify_query("ab" * 32)[0], classify_query("hello")
(('height', '42'), 'hex32', ('unknown', 'hello'))
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from chain.client.common import AnchoredDigest
from chain.errors import ChainError, ClientError
from rongxin.platform.config import PlatformError

if TYPE_CHECKING:
    from chain.client import NodeClient
    from chain.types import Genesis

_HEX32 = re.compile(r"^[0-9a-fA-F]{64}$")
BLOCK_CACHE = 20_000
"""Committed blocks kept in memory (they never change)."""
CHART_BLOCKS = 240
"""How many recent blocks the production chart covers."""


class ChainUnavailable(PlatformError):
    """No node is configured, or the node could not answer (the message says which)."""


def classify_query(q: str) -> tuple[str, str]:
    """``("height", digits)``, ``("hex32", lowercase hex)`` or ``("unknown", q)``."""
    q = q.strip()
    if q.isdigit() and len(q) <= 19:
        return "height", str(int(q))
    if _HEX32.fullmatch(q):
        return "hex32", q.lower()
    return "unknown", q


@dataclass(frozen=True)
class NodeProbe:
    """One consortium node's answer to ``GET /status`` (or why there was none)."""

    url: str
    online: bool
    status: dict[str, Any]
    error: str = ""
    latency_ms: float = 0.0


def probe_nodes(urls: Sequence[str], timeout_s: float = 2.0) -> list[NodeProbe]:
    """Ask each node's public ``/status`` (bounded answer size and time)."""
    out = []
    with httpx.Client(timeout=timeout_s) as http:
        for url in urls:
            t0 = time.perf_counter()
            try:
                r = http.get(f"{url}/status")
                ms = (time.perf_counter() - t0) * 1000
                if r.status_code != 200 or len(r.content) > 64 * 1024:
                    out.append(NodeProbe(url, False, {}, f"HTTP {r.status_code}", ms))
                    continue
                doc = r.json()
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                out.append(NodeProbe(url, True, doc, "", ms))
            except (httpx.HTTPError, ValueError) as exc:
                out.append(NodeProbe(url, False, {}, str(exc) or type(exc).__name__))
    return out


class ChainView:
    """The explorer's reads through one member's :class:`~chain.client.NodeClient`.

    Parameters
    ----------
    client : NodeClient or None
        ``None`` when no client profile is configured: every read raises
        :class:`ChainUnavailable`.
    genesis : Genesis or None
        The consortium's genesis (receipts are checked against it).
    """

    def __init__(self, client: NodeClient | None, genesis: Genesis | None) -> None:
        self.client = client
        self.genesis = genesis
        self._blocks: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        """Whether a node and genesis are configured."""
        return self.client is not None and self.genesis is not None

    def trusted_genesis(self) -> Genesis:
        """The genesis receipts are checked against (:class:`ChainUnavailable` without one)."""
        if self.genesis is None:
            raise ChainUnavailable("No node is configured: the explorer has nothing to read.")
        return self.genesis

    def _client(self) -> NodeClient:
        if self.client is None:
            raise ChainUnavailable("No node is configured: the explorer has nothing to read.")
        return self.client

    def _ask(self, method: str, path: str) -> dict[str, Any]:
        try:
            return self._client().request(method, path)
        except ClientError as exc:
            if exc.status == 404:
                raise LookupError(exc.reason) from None
            raise ChainUnavailable(f"The node could not answer: {exc}") from None
        except ChainError as exc:
            raise ChainUnavailable(f"The node could not answer: {exc}") from None

    def status(self) -> dict[str, Any]:
        """The node's ``/status``."""
        return self._ask("GET", "/status")

    def block(self, height: int) -> dict[str, Any]:
        """The committed block at ``height`` (:class:`LookupError` if there is none)."""
        with self._lock:
            hit = self._blocks.get(height)
            if hit is not None:
                self._blocks.move_to_end(height)
                return hit
        doc = self._ask("GET", f"/blocks/{int(height)}")
        with self._lock:
            self._blocks[height] = doc
            while len(self._blocks) > BLOCK_CACHE:
                self._blocks.popitem(last=False)
        return doc

    def block_by_hash(self, block_hash: str) -> dict[str, Any]:
        """The committed block with this hash (hex)."""
        return self._ask("GET", f"/blocks/hash/{block_hash}")

    def blocks(self, top: int, count: int) -> list[dict[str, Any]]:
        """Up to ``count`` blocks from height ``top`` downwards (height 0 is the genesis, skipped)."""
        return [self.block(h) for h in range(top, max(0, top - count), -1)]

    def transaction(self, tx_id: str) -> dict[str, Any]:
        """A transaction with its status, result, height and index."""
        return self._ask("GET", f"/txs/{tx_id}")

    def validators(self) -> dict[str, Any]:
        """The epoch in force and the history of validator sets."""
        return self._ask("GET", "/validators")

    def anchor(self, digest: bytes) -> AnchoredDigest:
        """How ``digest`` was anchored, its receipt verified against the genesis.

        Raises
        ------
        LookupError
            It was never anchored.
        ChainUnavailable
            The node could not answer, or its answer did not verify.
        """
        try:
            found = self._client().find_anchor(digest)
        except ChainError as exc:
            raise ChainUnavailable(f"The node could not answer: {exc}") from None
        if found is None:
            raise LookupError(f"{digest.hex()} was not anchored")
        return found

    def anchor_digest(self, digest: bytes, kind: str) -> tuple[bytes, int]:
        """Anchor ``digest`` as this member; the receipt bytes (verified) and its height."""
        try:
            receipt = self._client().anchor(digest, kind)
            info = receipt.verify(self.trusted_genesis())
        except ChainError as exc:
            raise ChainUnavailable(f"The node could not answer: {exc}") from None
        return receipt.to_bytes(), info.height

    def production(self, head: int, blocks: int = CHART_BLOCKS) -> list[tuple[int, int, int]]:
        """``(height, time_ms, transactions)`` of the last ``blocks`` blocks, oldest first."""
        rows = [
            (b["height"], int(b.get("time_ms", 0)), len(b.get("txs", []))) for b in self.blocks(head, blocks)
        ]
        return rows[::-1]

    def close(self) -> None:
        """Close the node client."""
        if self.client is not None:
            self.client.close()
