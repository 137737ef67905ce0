"""The contracts a Rongxin node runs: the ledger's own (membership, governance,
anchoring) and the confidential-transfer contracts of :mod:`zkp`.

``chain`` imports none of Rongxin's other packages, so the application registers the
domain contracts when it starts a node (``rongxin node run``, the demo).

Examples
--------
>>> from chain.localnet import LocalConsortium
>>> import tempfile
>>> c = LocalConsortium.create(tempfile.mkdtemp(), nodes=1, registry_factory=node_registry)
>>> c.replicas[0].app.executor.registry.get("anchor").type_name
'anchor'
>>> c.close()
"""

from __future__ import annotations

from typing import Any

from chain.contracts.base import ContractRegistry
from chain.types import Genesis


def node_registry(genesis: Genesis) -> ContractRegistry:
    """The ledger's default contracts plus the confidential-transfer ones."""
    from chain.executor import default_registry
    from zkp.contract import register_contracts

    registry = default_registry(genesis)
    register_contracts(registry)
    return registry


class LedgerStateReader:
    """Contract state read through a :class:`chain.client.Ledger`: each ``get`` is a proven
    state read (:meth:`~chain.client.Ledger.state`), so the confidential-transfer helpers
    (``zkp.contract.load_record``, ``transfer_records``) work against any member's node.

    Examples
    --------
    >>> class Fake:
    ...     def state(self, key): return {b"k": b"v"}.get(key)
    >>> LedgerStateReader(Fake()).get(b"k"), LedgerStateReader(Fake()).get(b"x")
    (b'v', None)
    """

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger

    def get(self, key: bytes) -> bytes | None:
        """The value at ``key`` (``None``: no entry), proven by the ledger."""
        value: bytes | None = self.ledger.state(key)
        return value
