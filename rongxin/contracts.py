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

from chain.contracts.base import ContractRegistry
from chain.types import Genesis


def node_registry(genesis: Genesis) -> ContractRegistry:
    """The ledger's default contracts plus the confidential-transfer ones."""
    from chain.executor import default_registry
    from zkp.contract import register_contracts

    registry = default_registry(genesis)
    register_contracts(registry)
    return registry
